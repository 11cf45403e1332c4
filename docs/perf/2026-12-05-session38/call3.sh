#!/usr/bin/env bash
# Session 38, call 3 (what device time was left: 433 s): experiment 70's risk checked alone (its new
# test, the wide-tile and replay tests, unbuffered), and gqa-llama3 timed again main / e70 / main
# (call 2 had b64_p2k +4 % on e70, one run). Carry [".device/s37r", ".device/s38"].
start=$SECONDS
nvidia-smi --query-gpu=name --format=csv,noheader; date -u
timeout 120 stdbuf -oL .device/s38/chunktree_gpu_tests --gtest_filter='CudaAttention.TheMerge*:CudaAttention.WideShared*:CudaReplay.*:CudaLevels.*' > $OUT/e70_tests.txt 2>&1
echo "e70 tests rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(OK|FAILED|PASSED|SKIPPED) ' $OUT/e70_tests.txt | tail -12
timeout 100 bench/compare.sh $OUT/ab main=.device/s37r/chunktree e70=.device/s38/chunktree mainB=.device/s37r/chunktree -- gqa-llama3 > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
rm -f $OUT/ab/.bench_scratch.csv; date -u
