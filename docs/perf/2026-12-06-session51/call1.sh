#!/usr/bin/env bash
# Session 51, call 1: (a) main's whole scripts/gpu-check (main 2d950d3 = 886272b's kernels + 53909f2 +
# experiment 88; .device/s51m: CLI, GPU tests, probe built here from main); (b) experiment 89 (branch
# exp89b: writes_output asked once per CTA) against main on the replayed engine step, own_profile.py
# main / e89 / main / e89 (OWN 0: b256_p2k, b64_p4k; OWN 14: b256_p2k); (c) e89's GPU unit suite.
# Carry [".device/s51m", ".device/s51mw", ".device/s51e89w", ".device/s51e89"].
# Prediction for 89: KERNEL_NOTES session 50 (wgmma tile end −0.3 to −1 µs; step −0 to −1 %).
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
scripts/gpu-check --no-build --build-dir .device/s51m --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? ($((SECONDS - start)) s)"; tail -16 $OUT/gpu_check.txt
mkdir -p $OUT/ab
for b in main=.device/s51mw e89=.device/s51e89w; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
for label in main e89 main e89; do
  for run in "0 b256_p2k b64_p4k" "14 b256_p2k"; do
    set -- $run
    PYTHONPATH=/tmp/w_$label timeout 60 python3 docs/perf/2026-12-06-session49/own_profile.py $run >> $OUT/ab/own$1_$label.txt 2>&1 || echo "own_profile $label $1 failed"
  done
  echo "== $label ($((SECONDS - start)) s)"
done
for f in $OUT/ab/own*_*.txt; do echo "$(basename $f):"; grep "replay span" $f | cut -c1-175; done
timeout 170 .device/s51e89/tests/chunktree_gpu_tests > $OUT/ab/gpu_unit_e89.txt 2>&1
echo "e89 gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure" $OUT/ab/gpu_unit_e89.txt | head -12
(cd $OUT && tar -czf ab.tgz ab && rm -rf ab; cp -r /tmp/gc/*.log /tmp/gc_logs 2>/dev/null; tar -czf gc_logs.tgz -C /tmp/gc --exclude='*/' $(cd /tmp/gc && ls *.log) 2>/dev/null)
date -u
