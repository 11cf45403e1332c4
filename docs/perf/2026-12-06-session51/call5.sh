#!/usr/bin/env bash
# Session 51, call 5: the whole scripts/gpu-check of main with experiment 89 (9a106f2, whose code is
# 3e386ac's; .device/s51f: CLI, GPU tests, probe built here). Call 1 ran it on 2d950d3 (88 without 89).
# Carry [".device/s51f"].
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
scripts/gpu-check --no-build --build-dir .device/s51f --work /tmp/gc5 > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $?"; tail -14 $OUT/gpu_check.txt; date -u
