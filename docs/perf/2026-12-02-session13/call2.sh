#!/usr/bin/env bash
# Session 13, call 2: experiment 29 (the wgmma consumers in ping-pong, each issuing S(k) beside
# P(k-1)·V(k-1), three stages). The carried build is the experiment's: GPU unit tests, quick grid,
# random and 1000-sequence trees with --strict, racecheck and synccheck on the wgmma tests (new
# named barriers); then bench/compare.sh exp29 / base (cd1e96d's CLI) / exp29 again on the presets
# with wgmma tiles.
set -u
d=.device/s13
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -40 $OUT/r/unit.txt; tar -C $OUT -czf $OUT/call2.tgz r; exit 1; }
$cli gentests --quick /tmp/q > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/r/quick.txt)/36"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/r/trees.txt)/96"
$cli gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null && timeout 60 $cli check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large.txt 2>&1; echo "large rc $? $(grep -c ^PASSED $OUT/r/large.txt)/4"
date -u
timeout 240 bench/compare.sh $OUT/r/ab exp29=$cli base=$d/base exp29b=$cli -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0" $OUT/r/ab/compare.md | head -8
wg='CudaAttention.WideSharedSpansOnWgmmaTiles:CudaLevels.WideSharedSegmentsOnWgmmaTiles:CudaMultiToken.CausalMasksInsideWideSharedItems'
timeout 90 compute-sanitizer --tool racecheck --error-exitcode 1 $tests --gtest_filter="$wg" > $OUT/r/racecheck.txt 2>&1; echo "racecheck rc $? $(tail -1 $OUT/r/racecheck.txt)"
timeout 60 compute-sanitizer --tool synccheck --error-exitcode 1 $tests --gtest_filter="$wg" > $OUT/r/synccheck.txt 2>&1; echo "synccheck rc $? $(tail -1 $OUT/r/synccheck.txt)"
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r; date -u
