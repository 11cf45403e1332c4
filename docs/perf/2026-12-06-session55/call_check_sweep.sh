#!/usr/bin/env bash
# Session 55: scripts/gpu-check of main's kernels (ad73297, `.device/s54m`: CLI, GPU unit tests and
# hand-off probe from the clean commit), all but the full grids (call_h200_run.sh runs those), on the
# card this call gets; then experiment 95rp's sweep (call_95rp.sh) in what time is left.
# Carry [".device/s54m", ".device/s55d"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/xm && rm -rf $x && mkdir -p $x/tools $x/tests
gunzip -c .device/s54m/chunktree.gz > $x/tools/chunktree &&
  xz -dc .device/s54m/chunktree_gpu_tests.xz > $x/tests/chunktree_gpu_tests &&
  xz -dc .device/s54m/chunktree_handoff_probe.xz > $x/tests/chunktree_handoff_probe && chmod +x $x/tools/* $x/tests/* || exit 1
timeout ${CHECK_S:-240} scripts/gpu-check --no-build --build-dir $x --work /tmp/gc --skip-full-grid > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? ($((SECONDS - start)) s)"; grep -A12 "gpu-check summary" $OUT/gpu_check.txt || tail -14 $OUT/gpu_check.txt
mkdir -p $OUT/gc && cp /tmp/gc/*.log $OUT/gc/ 2>/dev/null; (cd $OUT && tar -czf gc.tgz gc && rm -rf gc)
left=$((${CALL_END_S:-570} - (SECONDS - start)))
SWEEP_S=$((left - 60)) CALL_S=$left bash docs/perf/2026-12-06-session55/call_95rp.sh
