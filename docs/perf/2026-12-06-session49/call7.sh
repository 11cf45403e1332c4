#!/usr/bin/env bash
# Session 49, call 7: experiment 86 (branch exp86, 4fbb34a: short private spans beside wgmma tiles on
# plain warps) against main (886272b's kernels), one machine, in the session's last device time:
# 1. own_profile.py, main / e86 / main / e86: OWN 0 (7-14 own tokens) for b256_p2k and b64_p4k, OWN 14
#    (21-28) for b256_p2k;
# 2. e86's GPU unit suite (the whole gpu-check, grids and sanitizers, is for the next session).
# Carry [".device/s49r", ".device/s49e86w", ".device/s49e86"]. Prediction: KERNEL_NOTES session 49, 86.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s49r e86=.device/s49e86w; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c7
for label in main e86 main e86; do
  for run in "0 b256_p2k b64_p4k" "14 b256_p2k"; do
    set -- $run
    PYTHONPATH=/tmp/w_$label timeout 60 python3 docs/perf/2026-12-06-session49/own_profile.py $run >> $OUT/c7/own$1_$label.txt 2>&1 || echo "own_profile $label $1 failed"
  done
  echo "== $label ($((SECONDS - start)) s)"
done
for f in $OUT/c7/own*_*.txt; do echo "$(basename $f):"; grep "replay span" $f | cut -c1-175; done
timeout 170 .device/s49e86/tests/chunktree_gpu_tests > $OUT/c7/gpu_unit_e86.txt 2>&1
echo "gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure" $OUT/c7/gpu_unit_e86.txt | head -12
grep -A3 "ShortPrivateSpansOnWarps" $OUT/c7/gpu_unit_e86.txt | grep -E "OK|FAILED" | head -3
(cd $OUT && tar -czf c7.tgz c7 && rm -rf c7)
date -u
