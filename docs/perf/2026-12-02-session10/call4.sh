#!/usr/bin/env bash
# Session 10, call 4: scripts/gpu-check on the final code (de1a7f0), now with the sequence-first
# quick and full grids; failures' first lines.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 570 scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 14 $OUT/gpu-check.txt
grep -hE "^\[  FAILED|Failure|^FAILED" /tmp/gc/*.log /tmp/gc/*.out 2>/dev/null | head -10
date -u
