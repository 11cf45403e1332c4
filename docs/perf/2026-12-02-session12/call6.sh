#!/usr/bin/env bash
# Session 12, call 6: experiment 28 (the scale folded into the exponent of the wgmma consumers;
# branch exp28-ffma). Its GPU tests of the wgmma tiles, levels (negative scale included), causal
# multi-token queries and odd shapes; quick grid and random trees with --strict; A/B exp28 /
# d73855c (the committed run's CLI) / exp28 again on hydragen-micro and spec-decode.
set -u
e=.device/s12/exp28
cli=build/default/tools/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 60 $e/chunktree_gpu_tests --gtest_filter='*WgmmaTiles*:*ScaleAndNoLse*:CudaMultiToken.*:Cuda/BackendAttention.OddShapes/*:Cuda/BackendLevels.OddShapes/*' > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -30 $OUT/r/unit.txt; tar -C $OUT -czf $OUT/call6.tgz r; exit 1; }
$e/chunktree gentests --quick /tmp/q > /dev/null && timeout 30 $e/chunktree check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/r/quick.txt)/36"
$e/chunktree gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 30 $e/chunktree check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/r/trees.txt)/96"
date -u
timeout 130 bench/compare.sh $OUT/r/ab exp28=$e/chunktree d73855c=$cli exp28b=$e/chunktree -- hydragen-micro spec-decode > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
tar -C $OUT -czf $OUT/call6.tgz r && rm -rf $OUT/r; date -u
