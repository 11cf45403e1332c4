#!/usr/bin/env bash
# Session 10, call 5: the final code (cbfaf58: the seed checks after review) on the GPU where it
# changed: the check tests of the GPU unit tests, both quick grids and the sequence-first full grid
# with --strict, and call 4's rounded files (their dumps checked again).
set -u
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
build/default/tests/chunktree_gpu_tests --gtest_filter='CudaCheck.*' 2>&1 | tail -n 3
for g in "--quick" "--seq-first --quick" "--seq-first --full --jobs 16"; do
  rm -rf /tmp/g && $cli gentests $g /tmp/g > /dev/null && $cli check --strict --backend cuda --jobs 16 /tmp/g/*.txt > /tmp/g.out; echo "gentests $g: rc $? $(grep -c ^PASSED /tmp/g.out)/$(ls /tmp/g/*.txt | wc -l) PASSED"
done
bash docs/perf/2026-12-02-session10/call4.sh > /dev/null 2>&1; grep -c PASSED $OUT/rounded_check.txt
$cli check --strict --backend cuda --dump /tmp/dumps /tmp/off/*.txt > /dev/null; $cli check --strict --backend cuda /tmp/dumps/*.txt | tee $OUT/dumps_check.txt | grep SUMMARY
date -u
