#!/usr/bin/env bash
# Session 29, call 2 (device): experiment 65, one CTA per tile where the round robin deals unevenly.
#  1. e65's GPU unit tests, the --strict quick grid and 96 random trees on the CUDA backend.
#  2. bench/compare.sh main (e7cefa0's code) / e65 / main again over chunkattn-t3 and flashinfer-cascade.
set -u
o=$OUT; w=/tmp/c2; rm -rf $w; mkdir -p $w
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
cli=.device/e65/tools/chunktree
timeout 170 .device/e65/tests/chunktree_gpu_tests > $o/gpu_tests.txt 2>&1; echo "gpu tests rc $?"; tail -3 $o/gpu_tests.txt
timeout 60 bash -c "$cli gentests --quick $w/quick >/dev/null && $cli check --strict --backend cuda --jobs 16 $w/quick/*.txt > $o/check_quick.txt 2>&1"; echo "quick rc $? $(grep -c ^PASSED $o/check_quick.txt)/$(ls $w/quick/*.txt | wc -l)"
timeout 60 bash -c "$cli gentrees --count 96 --seed 7 --gpu-dtypes $w/trees >/dev/null && $cli check --strict --backend cuda --jobs 16 $w/trees/*.txt > $o/check_trees.txt 2>&1"; echo "trees rc $? $(grep -c ^PASSED $o/check_trees.txt)/96"
timeout 280 bench/compare.sh $w/ab main=.device/e64/chunktree e65=$cli mainB=.device/e64/chunktree -- chunkattn-t3 flashinfer-cascade > $o/compare.log 2>&1
echo "compare rc $?"; cat $w/ab/compare.md
tar -C $w -czf $o/ab.tgz ab
