#!/usr/bin/env bash
# Session 43, call 1: experiment 79d (branch exp79: the window's run parts one after another, their
# values shuffled to every thread, thread 0 issuing each part's boxes from uniform registers) in
# .device/s43d beside main (2125387's kernels) in .device/s41c: bench/ab_decode_step.sh (the loop
# profiles main / e79d / main, bench/compare.sh, ncu of the engine path's wgmma launch), then the
# whole scripts/gpu-check of e79d. Carry [".device/s43d", ".device/s41c"].
# Prediction: KERNEL_NOTES session 42, 79d.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench/ab_decode_step.sh $OUT main=.device/s41c e79d=.device/s43d
left=$((560 - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir .device/s43d --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -14 $OUT/gpu_check.txt
mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
cd $OUT && tar -czf /tmp/next1.tgz . && rm -rf ./* && mv /tmp/next1.tgz $OUT/next_call1.tgz; date -u
