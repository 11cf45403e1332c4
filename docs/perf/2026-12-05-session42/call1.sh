#!/usr/bin/env bash
# Session 42, call 1: the whole scripts/gpu-check of main at 2125387's code (77: the producers' run
# records shuffled across a warp) in .device/s41g, which session 41 could not run; then synccheck
# (it checks __shfl_sync's masks) over every paged test of main; then experiment 78 (branch exp78 at
# c7de8a4, .device/s42y) through the same GPU unit tests that walk pages, trees and wide tiles, its
# new ItemsOfManyShortRunsCrossSeveralRecordWindows among them, and synccheck over its paged tests.
# Carry [".device/s41g", ".device/s42y"]. Prediction: every gpu-check step PASS (GPU unit tests
# 91 passed / 1 skipped of 92), synccheck 0 errors on both builds, e78's subset 43 passed / 1 skipped.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 430 scripts/gpu-check --no-build --build-dir .device/s41g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null
paged='Cuda/BackendPaged.*:CudaPaged.*'
timeout 60 compute-sanitizer --tool synccheck --error-exitcode 1 .device/s41g/tests/chunktree_gpu_tests --gtest_filter="$paged" > $OUT/synccheck_main_paged.txt 2>&1
echo "synccheck main paged rc $? at $((SECONDS - start)) s"; grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' $OUT/synccheck_main_paged.txt
left=$((520 - (SECONDS - start)))
timeout $left stdbuf -oL .device/s42y/tests/chunktree_gpu_tests --gtest_filter='*Paged*:*Wide*:*Replay*:*Tree*:*MergeWaits*:*Chunk*' > $OUT/tests_e78.txt 2>&1
echo "e78 tests rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(FAILED|PASSED|SKIPPED) ' $OUT/tests_e78.txt | tail -8
left=$((575 - (SECONDS - start)))
timeout $left compute-sanitizer --tool synccheck --error-exitcode 1 .device/s42y/tests/chunktree_gpu_tests --gtest_filter="$paged" > $OUT/synccheck_e78_paged.txt 2>&1
echo "synccheck e78 paged rc $? at $((SECONDS - start)) s"; grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' $OUT/synccheck_e78_paged.txt
tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
