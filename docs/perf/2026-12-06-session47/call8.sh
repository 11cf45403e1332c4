#!/usr/bin/env bash
# Session 47, call 8: experiment 84 (branch exp84, dd07265; .device/s47e84: its wheel and GPU unit
# tests) against main's wheel (.device/s47m), one machine, with the session's last ~200 s of device time:
# 1. page_profile.py 16 b64_p4k b256_p2k (the engine path's decode step over 16-token pages), main /
#    e84 / main / e84;
# 2. e84's GPU unit tests of the paged path and the wide tiles (its new consecutive-pages test among
#    them), in the time left. Not the whole gpu-check: no time for it.
# Carry [".device/s47m", ".device/s47e84"]. Prediction: KERNEL_NOTES 84 (wgmma kernel b64_p4k
# 22.3 → ~20 µs a layer, b256_p2k 28.6 → ~24).
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e84=.device/s47e84; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c8
for label in main e84 main e84; do
  PYTHONPATH=/tmp/w_$label timeout 30 python3 docs/perf/2026-12-06-session47/page_profile.py 16 b64_p4k b256_p2k >> $OUT/c8/page16_$label.txt 2>&1
  echo "== $label rc $?"; grep "replay span" $OUT/c8/page16_$label.txt | tail -2
done
timeout 60 .device/s47e84/chunktree_gpu_tests --gtest_filter='CudaPaged.*:Cuda/BackendPaged.*:CudaAttention.WideSharedSpansOnWgmmaTiles' \
  > $OUT/c8/gpu_unit_paged.txt 2>&1
echo "gpu unit (paged, wide) rc $?"; grep -E "^\[  (PASSED|FAILED) |tests ran|OK \] CudaPaged.SharedPrompt" $OUT/c8/gpu_unit_paged.txt | tail -6
date -u
