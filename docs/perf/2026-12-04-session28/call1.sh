#!/usr/bin/env bash
# Session 28, call 1 (device): experiment 61 (Q in registers, the next tile handed off a tile ahead)
# and 61b (+ an L2 prefetch of the next hand-off's record) against main (a3cdb10).
#  1. bench/compare.sh main / e61 / e61b / main again over the presets 61 may move and the shapes.
#  2. Correctness on e61: the GPU unit tests, --strict quick grid and random trees.
set -u
o=/tmp/call1; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/chunktree; e=.device/e61/tools/chunktree; b=.device/e61b/chunktree; t=.device/e61/tests/chunktree_gpu_tests
timeout 330 bench/compare.sh $o/ab main=$m e61=$e e61b=$b mainB=$m -- no-share chunkattn-t3 small gqa-llama3 > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
timeout 130 $t > $o/gpu-tests.txt 2>&1; echo "gpu tests rc $?"; tail -3 $o/gpu-tests.txt
$e gentests --quick /tmp/q > /dev/null; $e gentrees --count 96 --seed 7 --gpu-dtypes /tmp/tr > /dev/null
timeout 30 $e check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $o/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $o/check_quick.txt)/36"
timeout 30 $e check --strict --backend cuda --jobs 16 /tmp/tr/*.txt > $o/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $o/check_trees.txt)/96"
date -u | tee -a $o/gpu.txt
tar czf $OUT/call1.tgz -C /tmp call1
