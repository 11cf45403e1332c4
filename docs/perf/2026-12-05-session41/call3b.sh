#!/usr/bin/env bash
# Session 41, call 3 again (call3.sh's machine stopped answering ~500 s into it, and ~330 s of device
# time are left): the parts of scripts/gpu-check that 77 (shuffles of the run records) bears on, for
# main at 2125387, each under a limit so that what finished comes back: the GPU unit tests, synccheck
# (which checks __shfl_sync's masks) over the odd shapes and every paged and wide-tile test, memcheck
# over gpu-check's subset. The committed run (call 2) ran the --strict quick grid and random trees on
# this code; racecheck and the full grids wait for the next session. Carry [".device/s41g"].
# Prediction: all pass; the GPU unit tests 91 passed / 1 skipped (session 40's 88, 74's merge-wait
# test, WideTilesOverEveryPoolLayout, ItemsOfManyShortRunsCrossSeveralRecordWindows: 92 listed) in
# well under session 40's 178 s (the fp64 reference now runs on every core); synccheck and memcheck
# 0 errors. (Not run in session 41: too little device time was left to start a machine. Its
# .device/s41g holds main's kernels and, since, the GPU tests with the new test.)
start=$SECONDS
t=.device/s41g/tests/chunktree_gpu_tests
date -u; nvidia-smi --query-gpu=name --format=csv,noheader
timeout 120 $t > $OUT/unit.txt 2>&1; echo "unit tests rc $? at $((SECONDS - start)) s"; grep -E '^\[  (PASSED|FAILED) |^\[  SKIPPED \] [0-9]' $OUT/unit.txt
timeout 45 compute-sanitizer --tool synccheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*:Cuda/BackendPaged.*:CudaPaged.*' > $OUT/synccheck.txt 2>&1
echo "synccheck rc $? at $((SECONDS - start)) s"; grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' $OUT/synccheck.txt
subset='Cuda/BackendAttention.OddShapes/*:CudaAttention.GqaGroupsUpTo32:CudaAttention.WideSharedSpansOnWgmmaTiles:Cuda/BackendLevels.OddShapes/*:CudaLevels.WideSharedSegmentsOnWgmmaTiles:Cuda/BackendMerge.*:CudaMerge.*:CudaMultiToken.CausalMasksInsideWideSharedItems:CudaCache.*:CudaCheck.SeedFilesOfOddShapesPassStrict:CudaPaged.ReplayedGridsRunEveryTileAtAnyLiveCount:Cuda/BackendPaged.SequencesOfNoPageGetTheEmptyState/*'
timeout 45 compute-sanitizer --tool memcheck --error-exitcode 1 $t --gtest_filter="$subset" > $OUT/memcheck.txt 2>&1
echo "memcheck rc $? at $((SECONDS - start)) s"; grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' $OUT/memcheck.txt; date -u
