#!/usr/bin/env bash
# Session 11, call 4: experiment 25 (both producers through stage_copy.cuh; a2ed4da). The carried
# build is a2ed4da's: GPU unit tests, quick grid and random trees with --strict; then
# bench/compare.sh of base (fe010e9) / producer (a2ed4da) / producer_overlap (a2ed4da + 24a, 24b).
set -u
d=.device/s11
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $tests > $OUT/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/unit.txt | head
grep -q "^\[  PASSED" $OUT/unit.txt || { tail -5 $OUT/unit.txt; exit 1; }
$cli gentests --quick /tmp/q > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/quick.txt)/36"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/trees.txt)/96"
date -u
timeout 200 bench/compare.sh $OUT/ab base=$d/base producer=$d/producer producer_overlap=$d/producer_overlap -- hydragen-micro spec-decode no-share flashinfer-cascade > $OUT/compare.log 2>&1
echo "compare rc $?"; date -u
tar -C $OUT -czf $OUT/call4.tgz ab unit.txt quick.txt trees.txt compare.log && rm -rf $OUT/ab; ls $OUT
