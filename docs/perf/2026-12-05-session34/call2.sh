#!/usr/bin/env bash
# Not run: every start from 03:22 to 04:25 UTC was refused (six, ~90 s of budget each); call3.sh ran both.
# Session 34, call 2: the whole scripts/gpu-check on 4d1fb3a's code (e3b14a6 with session 34's host fixes: merge NaN, tagged handles, lse apart from out; binaries built here, stripped, in
# .device/s34), keeping the GPU unit tests' log (the long-span test prints its errors at 2^12 and
# 2^20 tokens); then the --strict checks again with -v over the grids it generated, for the worst
# relative norms the CUDA backend reaches (how much room the strict tolerances leave). Carry [".device/s34"].
date -u; timeout 400 scripts/gpu-check --no-build --build-dir .device/s34 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $?"; tail -16 $OUT/gpu_check.txt; cp /tmp/gc/gpu-unit-tests.log $OUT/ 2>/dev/null
grep -h "\[ note\|NearlyEqual" /tmp/gc/gpu-unit-tests.log | tee $OUT/long_span_notes.txt; date -u
mkdir -p /tmp/verbose
for grid in /tmp/gc/*/; do
  name=$(basename $grid); ls $grid*.txt > /dev/null 2>&1 || continue
  timeout 60 .device/s34/tools/chunktree check --strict -v --backend cuda --jobs 16 $grid*.txt > /tmp/verbose/$name.txt 2>&1
  echo "$name: rc $? $(grep -c ^PASSED /tmp/verbose/$name.txt) passed"
done
tar -C /tmp -czf $OUT/verbose.tgz verbose; date -u
