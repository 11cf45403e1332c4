#!/usr/bin/env bash
# Session 50, call 7 (12:20 UTC, the same machine, 122 s of device time left after it): experiment 88's
# correctness beyond its GPU unit suite (call 5), on its CLI (.device/s50e88c) and tests (.device/s50e88):
# the --strict grids (quick, sequence-first quick, full), random trees, memcheck on a subset and racecheck
# on two. Not the whole scripts/gpu-check (no time left for it): the large trees, synccheck, the probe and
# the sequence-first full grid were not run. Sent as one command line; this is that line, laid out.
date -u; c=.device/s50e88c/chunktree; t=.device/s50e88/tests/chunktree_gpu_tests; w=/tmp/g88; rm -rf $w; mkdir -p $w; s=$SECONDS
$c gentests --quick $w/q >/dev/null && $c check --strict --backend cuda --jobs 16 $w/q/*.txt > $w/q.out; echo "quick $(grep -c ^PASSED $w/q.out)/$(ls $w/q/*.txt|wc -l)"
$c gentests --seq-first --quick $w/sq >/dev/null && $c check --strict --backend cuda --jobs 16 $w/sq/*.txt > $w/sq.out; echo "seq quick $(grep -c ^PASSED $w/sq.out)/$(ls $w/sq/*.txt|wc -l)"
$c gentrees --count 96 --seed 7 --gpu-dtypes $w/t >/dev/null && $c check --strict --backend cuda --jobs 16 $w/t/*.txt > $w/t.out; echo "trees $(grep -c ^PASSED $w/t.out)/96"
$c gentests --full --jobs 16 $w/f >/dev/null && $c check --strict --backend cuda --jobs 16 $w/f/*.txt > $w/f.out; echo "full $(grep -c ^PASSED $w/f.out)/$(ls $w/f/*.txt|wc -l) ($((SECONDS-s)) s)"
compute-sanitizer --tool memcheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*:CudaAttention.WideSharedSpansOnWgmmaTiles:CudaPaged.ReplayedGridsRunEveryTileAtAnyLiveCount:Cuda/BackendPaged.SequencesOfNoPageGetTheEmptyState/*:CudaMerge.*' 2>&1 | tail -1
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*:CudaPaged.ReplayedGridsRunEveryTileAtAnyLiveCount' 2>&1 | tail -1
# Returned: quick 36/36, seq quick 64/64, trees 96/96, full 1680/1680 (29 s), memcheck 0 errors,
# racecheck 0 hazards (41 s in all).
