#!/usr/bin/env bash
# Session 24, call 7 (device): the CudaPaged and CudaReplay GPU tests after the two captured-run
# tests were put on one helper (CapturedPlans); main's code.
set -u
o=/tmp/call7; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee $o/gpu.txt
timeout 100 .device/t/chunktree_gpu_tests --gtest_filter='CudaPaged.*:CudaReplay.*' > $o/gpu-unit-tests.log 2>&1; echo "rc $?"
grep -E "^\[  (PASSED|FAILED)" $o/gpu-unit-tests.log | head
date -u | tee -a $o/gpu.txt
tar czf $OUT/call7.tgz -C /tmp call7
