#!/usr/bin/env bash
# Session 39 call 3, on the machine of call 2: the whole scripts/gpu-check of 25eec21 (.device/s39g).
# (.device/s39g: tools/chunktree, tests/chunktree_gpu_tests, tests/chunktree_handoff_probe; 9 MiB).
start=$SECONDS
date -u; timeout 560 scripts/gpu-check --no-build --build-dir .device/s39g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
