#!/usr/bin/env bash
# Session 9, call 1: experiment 23 (whole stages by the TMA): GPU unit tests, quick grid, random
# trees; then bench/compare.sh against 1a762b7 (the base) on the no-share, private and chunkattn-t3
# presets and bench/shapes.txt.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
cli=build/default/tools/chunktree
build/default/tests/chunktree_gpu_tests > $OUT/unit.txt 2>&1; echo "unit rc $?"; tail -n 3 $OUT/unit.txt; grep -E "^\[  FAILED" $OUT/unit.txt | head
mkdir -p /tmp/w
$cli gentests --quick /tmp/w/quick > /dev/null && $cli check --strict --backend cuda --jobs 16 /tmp/w/quick/*.txt > $OUT/quick.txt 2>&1; echo "quick rc $? passed $(grep -c ^PASSED $OUT/quick.txt)"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/w/trees > /dev/null && $cli check --strict --backend cuda --jobs 16 /tmp/w/trees/*.txt > $OUT/trees.txt 2>&1; echo "trees rc $? passed $(grep -c ^PASSED $OUT/trees.txt)"
grep -v "^PASSED" $OUT/trees.txt | head -5
date -u
timeout 400 bench/compare.sh $OUT/ab23 exp23=$cli base=$d/base/chunktree -- no-share private chunkattn-t3
cat $OUT/ab23/compare.md
date -u
