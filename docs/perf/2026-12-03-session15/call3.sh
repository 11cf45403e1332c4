#!/usr/bin/env bash
# Session 15, call 3: experiment 32, experiment 29's ping-pong consumers again, now on top of
# experiment 31a (-ftz): the carried build. GPU unit tests; quick grid, random and 1000-sequence
# trees with --strict; bench/compare.sh exp32 / exp31a / exp32 again on the presets with wgmma tiles.
set -u
d=.device/s15
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -40 $OUT/r/unit.txt; tar -C $OUT -czf $OUT/call3.tgz r; exit 1; }
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $cli gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/r/quick.txt)/36"
timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/r/trees.txt)/96"
timeout 60 $cli check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large.txt 2>&1; echo "large rc $? $(grep -c ^PASSED $OUT/r/large.txt)/4"
date -u; tar -C $OUT -czf $OUT/call3.tgz r
timeout 240 bench/compare.sh $OUT/r/ab exp32=$cli exp31a=$d/exp31a exp32b=$cli -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0|p1k_b128_s0" $OUT/r/ab/compare.md | head -10
tar -C $OUT -czf $OUT/call3.tgz r && rm -rf $OUT/r
