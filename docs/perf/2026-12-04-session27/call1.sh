#!/usr/bin/env bash
# Session 27, call 1 (device): experiment 59 (mma.sync one-tile CTAs: the producer holds its stages
# after the first until the consumers' Q copies are issued) against main (e05767a, experiment 58).
#  1. bench/compare.sh main / e59 / main again over the presets 59 may move and the shapes.
#  2. Correctness on e59: the GPU unit tests, --strict quick grid and random trees, synccheck and
#     racecheck on odd shapes (the new named barrier in the mma.sync kernel).
set -u
o=/tmp/call1; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/tools/chunktree; e=.device/e59/tools/chunktree; t=.device/e59/tests/chunktree_gpu_tests
timeout 330 bench/compare.sh $o/ab main=$m e59=$e mainB=$m -- chunkattn-t3 flashinfer-cascade gqa-llama3 spec-decode small no-share > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
timeout 100 $t > $o/gpu-tests.txt 2>&1; echo "gpu tests rc $?"; tail -3 $o/gpu-tests.txt
$e gentests --quick /tmp/q > /dev/null; $e gentrees --count 96 --seed 7 --gpu-dtypes /tmp/tr > /dev/null
timeout 30 $e check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $o/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $o/check_quick.txt)/36"
timeout 30 $e check --strict --backend cuda --jobs 16 /tmp/tr/*.txt > $o/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $o/check_trees.txt)/96"
timeout 40 compute-sanitizer --tool synccheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*' > $o/synccheck.txt 2>&1; echo "synccheck rc $?"; tail -1 $o/synccheck.txt
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*' > $o/racecheck.txt 2>&1; echo "racecheck rc $?"; tail -1 $o/racecheck.txt
date -u | tee -a $o/gpu.txt
tar czf $OUT/call1.tgz -C /tmp call1
