#!/usr/bin/env bash
# Session 8, call 5: c4a19b2 (the planner's keyed sort for out-of-order batches): the GPU unit tests,
# host-bench of B = 1024, and the flashinfer-cascade preset alone at 431f552 and here (its
# p32k_b128_s0 row was slower only inside run_all).
set -u
d=.device/s8
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
build/default/tests/chunktree_gpu_tests > $OUT/unit.txt 2>&1; echo "unit rc $?"; tail -n 1 $OUT/unit.txt; grep -E "^\[  FAILED" $OUT/unit.txt | head
for i in 1 2; do build/default/tools/chunktree host-bench --case b1024_p2k; done > $OUT/host.txt 2>&1; grep make_plan $OUT/host.txt
bench/compare.sh $OUT/abfc head=build/default/tools/chunktree old431=$d/old431 head2=build/default/tools/chunktree -- flashinfer-cascade > $OUT/abfc.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/abfc/compare.md | grep -E "case|p32k"; rm -f $OUT/abfc/one.csv $OUT/abfc/*.txt
date -u
