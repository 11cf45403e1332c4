#!/usr/bin/env bash
# Session 33, call 2: the whole scripts/gpu-check on main with experiment 69 merged (5740205's code;
# the binaries built here from b1e7f65, stripped, in .device/gc). Carry [".device/gc"].
date -u; timeout 540 scripts/gpu-check --no-build --build-dir .device/gc --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $?"; tail -16 $OUT/gpu_check.txt; grep "\[ note" $OUT/gpu_check.txt /tmp/gc/*.txt 2>/dev/null | head; date -u
