#!/usr/bin/env bash
# Session 29, call 5 (device), as run (the command line given to the device tool): the whole
# scripts/gpu-check on 5550cdc's build (the kernels of f8fad90 with experiment 65's grid choice).
date -u; timeout 480 scripts/gpu-check --no-build --build-dir .device/gc --work /tmp/gc > $OUT/gpu_check.txt 2>&1; echo "gpu-check rc $?"; tail -16 $OUT/gpu_check.txt; date -u
