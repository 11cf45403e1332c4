#!/usr/bin/env bash
# Session 27, call 2 (device): the whole scripts/gpu-check (full grids, memcheck, racecheck with the
# new barrier, synccheck) on main at f8fad90 (experiments 58 and 59), and ncu profiles of the
# mma.sync kernel (bench/profile.sh) on the one-tile fully shared row and the two no-share rows.
set -u
o=/tmp/call2; mkdir -p $o build/default/tools
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
timeout 330 scripts/gpu-check --no-build --build-dir .device/final --work /tmp/gc > $o/gpu-check.txt 2>&1; echo "gpu-check rc $?"
tail -16 $o/gpu-check.txt
date -u | tee -a $o/gpu.txt
cp .device/final/chunktree build/default/tools/
timeout 120 bench/profile.sh $o/prof shared_b32_mha_1k noshare_b32_mha_4k noshare_b512_gqa8x1_1k
date -u | tee -a $o/gpu.txt
tar czf $OUT/call2.tgz -C /tmp call2
