#!/usr/bin/env bash
# Session 33, call 6: scripts/gpu-check on the final code (72d25aa: experiments 69 and 68, the merge's
# overlap check), without the full grids (the budget left: 328 s); the long-span test's printed errors
# kept. Binaries built here, stripped, in .device/gc. Carry [".device/gc"].
date -u; timeout 195 scripts/gpu-check --no-build --skip-full-grid --build-dir .device/gc --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $?"; tail -14 $OUT/gpu_check.txt; grep -h "\[ note" /tmp/gc/*.log | tee $OUT/long_span_notes.txt; date -u
