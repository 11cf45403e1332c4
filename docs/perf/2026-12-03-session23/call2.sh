#!/usr/bin/env bash
# Session 23, call 2 (device): experiment 51 (tiles claimed at run time by the persistent mma.sync
# grid) against main's CLI (051882e) in one call, then the GPU unit tests on experiment 51.
set -u
o=/tmp/call2; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
timeout 230 bench/compare.sh "$o/ab" main=.device/cur/chunktree e51=.device/e51/chunktree -- no-share chunkattn-t3 small > "$o/compare.log" 2>&1
echo "compare rc $?"; cat "$o/ab/compare.md"
date -u | tee -a "$o/gpu.txt"
timeout 170 .device/e51/tests/chunktree_gpu_tests > "$o/gpu-unit-tests.log" 2>&1; echo "unit tests rc $?"; tail -1 "$o/gpu-unit-tests.log"
grep -E "^\[  FAILED" "$o/gpu-unit-tests.log" | head
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call2.tgz" -C /tmp call2
