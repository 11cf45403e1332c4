#!/usr/bin/env bash
# Session 41, call 3 (session 40's next_gpu_check.sh): the whole scripts/gpu-check of main at 2125387 (74, 76, 77;
# and the new WideTilesOverEveryPoolLayout test, which passed on exp75's kernels but has not run on
# main's). Build: .device/s41g/{tools/chunktree, tests/chunktree_gpu_tests, tests/chunktree_handoff_probe}
# from build/default. Carry [".device/s41g"]. Prediction: every step PASS; the GPU unit tests in well
# under session 40's 178-195 s (their fp64 reference now runs its sequences on the host's 16 cores:
# ADecodeStepAsTheCostModelCutsIt took 49 s, ~23 s a check of it on one core).
start=$SECONDS
date -u; timeout 370 scripts/gpu-check --no-build --build-dir .device/s41g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
