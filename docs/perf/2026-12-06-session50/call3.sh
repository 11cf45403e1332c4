#!/usr/bin/env bash
# Session 50, call 3: why experiment 87 missed its prediction (call 2: the replayed engine step of
# b256_p2k −0.6 % with 7-14 own tokens, where −7 to −13 % was predicted). Per-tile traces through a
# trace build of exp87 (64489f9) of the last replayed layer, as session 49's call 6 took of main:
# b256_p2k with 8 own tokens (main: 512 packed tiles, two a CTA on the persistent grid of 264) and 22.
# Main's trace build (session 49's, a4beba4: 886272b's kernels) runs beside it on the same card.
# Carry [".device/s50e87tr", ".device/s49tr"]. Prediction: one paired tile a CTA, its taken -> handed as main's
# (~6 µs) and its stages (2, one a group) ~1.5 µs; the CTAs' last finish ~9 µs before main's 43.5.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in e87=.device/s50e87tr main=.device/s49tr; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/t_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
for run in "0 b256_p2k e87" "0 b256_p2k main" "14 b256_p2k e87"; do
  set -- $run
  name=${2}_own$1_$3
  PYTHONPATH=/tmp/t_$3 timeout 60 python3 docs/perf/2026-12-06-session49/own_trace.py $1 $2 $OUT/trace_$name.csv > $OUT/trace_$name.log 2>&1
  echo "== $name rc $? ($((SECONDS - start)) s)"; tail -1 $OUT/trace_$name.log
  python3 bench/tile_trace.py $OUT/trace_$name.csv* 2>&1 | tee $OUT/trace_$name.txt | head -24
done
(cd $OUT && tar -czf traces.tgz trace_* && rm -f trace_*.csv*)
date -u
