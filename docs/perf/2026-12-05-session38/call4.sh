#!/usr/bin/env bash
# Session 38, call 4: the whole scripts/gpu-check of the kept build (.device/s38k: tools/chunktree,
# tests/chunktree_gpu_tests, tests/chunktree_handoff_probe). Carry [".device/s38k"].
start=$SECONDS
date -u; timeout 560 scripts/gpu-check --no-build --build-dir .device/s38k --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
