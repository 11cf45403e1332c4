#!/usr/bin/env bash
# Session 11, call 2: experiment 24 again, the ping-pong build with the register split fixed
# (283f47f; call 1's build hung in setmaxnreg). GPU unit tests of the wgmma paths, random trees with
# --strict, synccheck on the wgmma tests; bench/compare.sh of base (fe010e9) / stages3 / overlap
# (32a96fd) / pingpong on the presets with wgmma tiles; ncu of the ping-pong kernel.
set -u
d=.device/s11
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
wg='CudaAttention.*:CudaMultiToken.*:CudaLevels.*:Cuda/BackendAttention.OddShapes/*:Cuda/BackendLevels.OddShapes/*'
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 90 $tests --gtest_filter="$wg" > $OUT/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED|tests ran" $OUT/unit.txt | head
[ -s $OUT/unit.txt ] && grep -q "^\[  PASSED" $OUT/unit.txt || { tail -5 $OUT/unit.txt; exit 1; }
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/trees.txt)/96"
date -u
timeout 240 bench/compare.sh $OUT/ab base=$d/base stages3=$d/stages3 overlap=$d/overlap pingpong=$d/pingpong -- hydragen-micro spec-decode gqa-llama3 flashinfer-cascade > $OUT/compare.log 2>&1
echo "compare rc $?"; date -u
timeout 60 compute-sanitizer --tool synccheck $tests --gtest_filter='CudaAttention.WideSharedSpansOnWgmmaTiles:CudaLevels.WideSharedSegmentsOnWgmmaTiles' > $OUT/synccheck.txt 2>&1; echo "synccheck rc $? $(grep 'ERROR SUMMARY' $OUT/synccheck.txt | tail -1)"
timeout 60 bench/profile.sh $OUT/prof hydragen_b4096_p8k; date -u
