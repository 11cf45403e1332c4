#!/usr/bin/env bash
# Session 29, call 3 (device): this commit's GPU unit tests (experiment 65 kept, the many-tiles tests
# replaced), then its committed run (bench/committed_run.sh) unless they failed.
set -u
timeout 200 .device/final/tests/chunktree_gpu_tests > $OUT/gpu_tests.txt 2>&1; rc=$?
echo "gpu tests rc $rc"; grep -E "PASSED|FAILED|tests ran" $OUT/gpu_tests.txt | tail -5
grep -E "OK \] CudaAttention\.(Thousands|Persistent)" $OUT/gpu_tests.txt
[ $rc = 0 ] || exit 1
bench/committed_run.sh .device/final $OUT 330
