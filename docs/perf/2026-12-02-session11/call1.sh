#!/usr/bin/env bash
# Session 11, call 1: experiment 24 (the wgmma tiles: three stages, softmax overlapping the previous
# step's P·V, ping-pong of the consumer warpgroups). The carried build is the ping-pong one
# (edf868b): GPU unit tests, quick grid and random trees with --strict, synccheck and racecheck on
# the wgmma tests; then bench/compare.sh of base (fe010e9) / stages3 / overlap (32a96fd) / pingpong
# on the presets with wgmma tiles; then ncu of the ping-pong kernel on hydragen b4096_p8k.
set -u
d=.device/s11
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 200 $tests > $OUT/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/unit.txt | head
$cli gentests --quick /tmp/q > /dev/null && $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/quick.txt)/36"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/trees.txt)/96"
date -u
timeout 400 bench/compare.sh $OUT/ab base=$d/base stages3=$d/stages3 overlap=$d/overlap pingpong=$d/pingpong -- hydragen-micro spec-decode flashinfer-cascade gqa-llama3 chunkattn-t3 tree > $OUT/compare.log 2>&1
echo "compare rc $?"; date -u
wg='CudaAttention.WideSharedSpansOnWgmmaTiles:CudaLevels.WideSharedSegmentsOnWgmmaTiles:CudaMultiToken.CausalMasksInsideWideSharedItems'
for tool in synccheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool $tests --gtest_filter=$wg > $OUT/$tool.txt 2>&1; echo "$tool rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/$tool.txt | tail -1)"
done
date -u
timeout 120 bench/profile.sh $OUT/prof hydragen_b4096_p8k; date -u
