#!/usr/bin/env bash
# Session 25, call 1 (device).
#  1. conditional_probe (session 24's next/conditional_probe.cu): may a kernel outside a captured
#     graph set a conditional node's handle for the graph's later launches, and what an IF node
#     costs per launch, skipped or taken.
#  2. Experiment 54 (head-major prefix-cache pools) against main's CLI: bench/compare.sh main / e54 /
#     main again (the drift) over no-share, chunkattn-t3, small, spec-decode and the custom shapes.
#  3. The GPU unit tests on e54.
# Binaries built on the CPU machine from f0d7f7f (main) and f0d7f7f + the e54 patch, stripped.
set -u
o=/tmp/call1; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
timeout 60 .device/probe/conditional_probe > $o/probe.txt 2>&1; echo "probe rc $?"; cat $o/probe.txt
date -u | tee -a $o/gpu.txt
timeout 300 bench/compare.sh $o/ab main=.device/main/tools/chunktree e54=.device/e54/tools/chunktree \
  mainB=.device/main/tools/chunktree -- no-share chunkattn-t3 small spec-decode > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
timeout 150 .device/e54/tests/chunktree_gpu_tests > $o/gpu-unit-tests.log 2>&1; echo "unit tests rc $?"; tail -1 $o/gpu-unit-tests.log
grep -E "^\[  FAILED" $o/gpu-unit-tests.log | head
date -u | tee -a $o/gpu.txt
tar czf $OUT/call1.tgz -C /tmp call1
