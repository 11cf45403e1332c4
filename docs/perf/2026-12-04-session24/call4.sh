#!/usr/bin/env bash
# Session 24, call 4 (device): the whole scripts/gpu-check, full grids included, on main's kernel
# (cc2b939: 051882e's src) with the new replay test; binaries built here, stripped, in .device/gc.
set -u
o=/tmp/call4; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
.device/gc/tools/chunktree info | head -1 | tee -a $o/gpu.txt
timeout 560 scripts/gpu-check --no-build --build-dir .device/gc --work /tmp/gc > $o/gpu-check.txt 2>&1; echo "gpu-check rc $?"
tail -16 $o/gpu-check.txt
grep -E "^\[  FAILED" /tmp/gc/gpu-unit-tests.log | head
date -u | tee -a $o/gpu.txt
tar czf $OUT/call4.tgz -C /tmp call4
