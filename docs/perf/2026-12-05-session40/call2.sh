#!/usr/bin/env bash
# Session 40, call 2 (session 39's next_gpu_check.sh): the whole scripts/gpu-check of the same build. Carry [".device/s40g"].
# (.device/s40g: tools/chunktree, tests/chunktree_gpu_tests, tests/chunktree_handoff_probe; 9 MiB).
start=$SECONDS
date -u; timeout 560 scripts/gpu-check --no-build --build-dir .device/s40g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
