#!/usr/bin/env bash
# For session 54, only if next_call1.sh shows experiment 92 gaining with its checks green (prepared in
# session 53, not run). First `git merge --ff-only exp92m` on main, so that the run's commit is main's.
# `.device/s54m` holds a clean build of exp92m: the CLI (gzipped) and wheel for bench/committed_run.sh,
# and the GPU tests and probe (xz) for scripts/gpu-check. Carry [".device/s54m", ".carry"].
# The committed run and the whole gpu-check take ~9 minutes together: past one call's 600 s with the
# start, so this call runs the gpu-check, and next_call3 (the committed run alone, as session 52's
# call1.sh: `bench/committed_run.sh .device/s54m $OUT 450`) follows.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
build=/tmp/s54m && mkdir -p $build/tools $build/tests
gunzip -c .device/s54m/chunktree.gz > $build/tools/chunktree && xz -dc .device/s54m/chunktree_gpu_tests.xz > $build/tests/chunktree_gpu_tests &&
  xz -dc .device/s54m/chunktree_handoff_probe.xz > $build/tests/chunktree_handoff_probe && chmod +x $build/tools/* $build/tests/* || exit 1
scripts/gpu-check --no-build --build-dir $build --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $?"; tail -14 $OUT/gpu_check.txt; date -u
