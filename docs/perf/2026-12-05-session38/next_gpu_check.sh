#!/usr/bin/env bash
# For the next session, on the same machine after next_call.sh: the whole scripts/gpu-check of e2ef71d
# (.device/s38g: tools/chunktree, tests/chunktree_gpu_tests, tests/chunktree_handoff_probe; 9 MiB).
# Session 38 ran only the GPU unit tests (85 passed, 1 skipped) and the --strict quick grid and
# random trees of experiment 70 on an H100. Carry [".device/s38g"].
start=$SECONDS
date -u; timeout 560 scripts/gpu-check --no-build --build-dir .device/s38g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
