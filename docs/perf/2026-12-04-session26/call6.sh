#!/usr/bin/env bash
# Session 26, call 6 (device): experiment 58 (the producer holds its stages after the first until
# the consumers' Q copies of the CTA's first tile are issued) against main (1c3b64f).
#  1. bench/compare.sh main / e58 / main again over flashinfer-cascade and gqa-llama3 (and shapes).
#  2. Correctness on e58: the GPU unit tests, --strict quick grid and random trees, synccheck and
#     racecheck on the wgmma tests (the new named barrier).
set -u
o=/tmp/call6; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/tools/chunktree; e=.device/e58/tools/chunktree; t=.device/e58/tests/chunktree_gpu_tests
timeout 100 bench/compare.sh $o/ab main=$m e58=$e mainB=$m -- flashinfer-cascade gqa-llama3 > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
timeout 130 $t > $o/gpu-tests.txt 2>&1; echo "gpu tests rc $?"; tail -3 $o/gpu-tests.txt
$e gentests --quick /tmp/q > /dev/null; $e gentrees --count 96 --seed 7 --gpu-dtypes /tmp/tr > /dev/null
timeout 30 $e check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $o/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $o/check_quick.txt)/36"
timeout 30 $e check --strict --backend cuda --jobs 16 /tmp/tr/*.txt > $o/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $o/check_trees.txt)/96"
timeout 20 compute-sanitizer --tool synccheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*:CudaAttention.WideSharedSpansOnWgmmaTiles' > $o/synccheck.txt 2>&1; echo "synccheck rc $?"; tail -1 $o/synccheck.txt
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 1 $t --gtest_filter='CudaAttention.WideSharedSpansOnWgmmaTiles:CudaMultiToken.CausalMasksInsideWideSharedItems' > $o/racecheck.txt 2>&1; echo "racecheck rc $?"; tail -1 $o/racecheck.txt
date -u | tee -a $o/gpu.txt
tar czf $OUT/call6.tgz -C /tmp call6
