#!/usr/bin/env bash
# Session 22, call 4 (device): the kept kernel (main's 49c with the TileRow mapping for the Q copy,
# the warps' shares and the end phase; e50a of calls 2-3 plus WarpShare through TileRow) checked:
# GPU unit tests, --strict quick grid and random trees (its timing is e50a's: calls 2-3). Binaries
# in .device/final (chunktree, tests/).
set -u
o=/tmp/call4; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
cli=.device/final/chunktree
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $o/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $o/check_quick.txt)/36"
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $o/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $o/check_trees.txt)/96"
timeout 150 .device/final/tests/chunktree_gpu_tests > "$o/gpu-unit-tests.log" 2>&1; echo "unit tests rc $?"; tail -1 "$o/gpu-unit-tests.log"
grep -E "^\[  FAILED" "$o/gpu-unit-tests.log" | head
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call4.tgz" -C /tmp call4
