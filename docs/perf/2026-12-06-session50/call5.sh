#!/usr/bin/env bash
# Session 50, call 5: experiment 88 (branch exp88: a row's target keeps writes_output's answer, so that a
# replayed launch's stores no longer wait on a reload of the live flag) against main (07b10f2), one
# machine: e88's GPU unit suite; then own_profile.py (the engine path's replayed decode step), main /
# e88 / main / e88: OWN 0 (7-14 own tokens) for b256_p2k and b64_p4k, OWN 14 (21-28) for b256_p2k.
# Carry [".device/s50z", ".device/s50e88w", ".device/s50e88"]. Prediction: KERNEL_NOTES session 50, 88.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/c5
for b in main=.device/s50z e88=.device/s50e88w; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
for label in main e88 main e88; do
  for run in "0 b256_p2k b64_p4k" "14 b256_p2k"; do
    set -- $run
    PYTHONPATH=/tmp/w_$label timeout 60 python3 docs/perf/2026-12-06-session49/own_profile.py $run >> $OUT/c5/own$1_$label.txt 2>&1 || echo "own_profile $label $1 failed"
  done
  echo "== $label ($((SECONDS - start)) s)"
done
for f in $OUT/c5/own*_*.txt; do echo "$(basename $f):"; grep "replay span" $f | cut -c1-175; done
timeout 170 .device/s50e88/tests/chunktree_gpu_tests > $OUT/c5/gpu_unit_e88.txt 2>&1
echo "gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure" $OUT/c5/gpu_unit_e88.txt | head -12
(cd $OUT && tar -czf c5.tgz c5 && rm -rf c5)
date -u
