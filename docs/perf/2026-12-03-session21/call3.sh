#!/usr/bin/env bash
# Session 21, call 3 (device): experiment 49c (the end phase's per-row work moved to one lane a row,
# before the row loop) against main's CLI and experiment 48 (bench/compare.sh over small,
# chunkattn-t3, spec-decode, flashinfer-cascade and bench/shapes.txt), then 49c's GPU unit tests.
# Results packed in OUT/call3.tgz. Binaries in .device/{main,e48,e49c}.
set -u
o=/tmp/call3; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
bench/compare.sh "$o/ab" main=.device/main/tools/chunktree e48=.device/e48/tools/chunktree e49c=.device/e49c/tools/chunktree \
  -- small chunkattn-t3 spec-decode flashinfer-cascade > "$o/compare.log" 2>&1
cat "$o/ab/compare.md"
timeout 150 .device/e49c/tests/chunktree_gpu_tests > "$o/gpu-unit-tests.log" 2>&1; echo "unit tests rc $?"; tail -3 "$o/gpu-unit-tests.log"
grep -E "^\[  FAILED" "$o/gpu-unit-tests.log" | head
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call3.tgz" -C /tmp call3
