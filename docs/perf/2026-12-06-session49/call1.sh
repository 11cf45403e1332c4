#!/usr/bin/env bash
# Session 49, call 1: main's (886272b: experiment 84d and the shared map encoder) whole gpu-check —
# unit suite, grids, trees and sanitizers. Carry [".device/s49m"] (CLI, GPU tests and probe built at
# 886272b). Prediction: all green (92 passed, 1 skipped; grids 36/64/1680/2800; trees 96/4; 0 errors).
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
scripts/gpu-check --no-build --build-dir .device/s49m --work /tmp/gc 2>&1 | tee $OUT/gpu_check.txt | grep -E "^== "
tail -13 $OUT/gpu_check.txt; grep -E "^\[  (PASSED|FAILED) " /tmp/gc/gpu-unit-tests.log
date -u
