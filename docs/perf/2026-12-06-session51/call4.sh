#!/usr/bin/env bash
# Session 51, call 4: where experiment 89's +0.35 µs a layer of the wgmma kernel (call 1, b256_p2k with
# 21-28 own tokens) comes from. Per-tile traces of the last replayed layer through trace builds of
# 2d950d3 (main before 89, .device/s51trm) and 3e386ac (main with 89, .device/s51tr89), on one card:
# b256_p2k with 22 own tokens, then 8. Carry [".device/s51trm", ".device/s51tr89"].
# Prediction (KERNEL_NOTES session 51): the wgmma tile's "combined -> stored" shorter by 0.3-1 µs
# with 89; its stages unchanged.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s51trm e89=.device/s51tr89; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/t_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
for run in "14 b256_p2k main" "14 b256_p2k e89" "0 b256_p2k main" "0 b256_p2k e89"; do
  set -- $run
  name=${2}_own$1_$3
  PYTHONPATH=/tmp/t_$3 timeout 60 python3 docs/perf/2026-12-06-session49/own_trace.py $1 $2 $OUT/trace_$name.csv > $OUT/trace_$name.log 2>&1
  echo "== $name rc $? ($((SECONDS - start)) s)"; tail -1 $OUT/trace_$name.log
  python3 bench/tile_trace.py $OUT/trace_$name.csv* 2>&1 | tee $OUT/trace_$name.txt | head -30
done
(cd $OUT && tar -czf traces.tgz trace_* && rm -f trace_*)
date -u
