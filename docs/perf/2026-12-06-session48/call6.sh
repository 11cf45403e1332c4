#!/usr/bin/env bash
# Session 48, call 6: the rest of main's (f34d3df, experiment 84d) whole gpu-check, in the session's
# last ~220 s of device time. Its GPU unit suite passed in call 5 (92 passed, 1 skipped), so here the
# unit step runs only the consecutive-pages test (GTEST_FILTER; the sanitizer steps pass their own
# --gtest_filter, which overrides it), then the grids, trees and sanitizers as gpu-check runs them.
# Carry [".device/s48m"] (main's CLI, GPU tests and probe, built at f34d3df). Prediction: all green.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
GTEST_FILTER='CudaPaged.SharedPromptOnConsecutivePages' scripts/gpu-check --no-build --build-dir .device/s48m --work /tmp/gc 2>&1 | tee $OUT/gpu_check.txt | grep -E "^== "
tail -13 $OUT/gpu_check.txt; grep -E "^\[  (PASSED|FAILED) " /tmp/gc/gpu-unit-tests.log
date -u
