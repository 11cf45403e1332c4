#!/usr/bin/env bash
# Session 49, call 6: where a private tile's ~11 µs goes beside wgmma tiles in the replayed engine
# step (experiment 85's reading). Per-tile traces through a trace build of main (a4beba4, whose
# kernels are 886272b's) of the last replayed layer: b256_p2k with 8 own tokens (the prompt cut in
# two, 128 wgmma tiles) and 22 (whole, 64 tiles), b64_p4k with 8. Carry [".device/s49tr"].
# Prediction: the private tiles that start after the wgmma tiles take ~8-9 µs each, as session 40's
# eager trace (taken -> handed ~4 µs: the Q and header), and those beside the wgmma tiles longer.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/t_main .device/s49tr/wheel/*.whl || exit 1
for run in "0 b256_p2k" "14 b256_p2k" "0 b64_p4k"; do
  set -- $run
  name=${2}_own$1
  PYTHONPATH=/tmp/t_main timeout 60 python3 docs/perf/2026-12-06-session49/own_trace.py $1 $2 $OUT/trace_$name.csv > $OUT/trace_$name.log 2>&1
  echo "== $name rc $? ($((SECONDS - start)) s)"; tail -1 $OUT/trace_$name.log
  python3 bench/tile_trace.py $OUT/trace_$name.csv* 2>&1 | tee $OUT/trace_$name.txt | head -24
done
(cd $OUT && tar -czf traces.tgz trace_* && rm -f trace_*.csv*)
date -u
