#!/usr/bin/env bash
# Session 48, call 1: experiment 84 (branch exp84, dd07265; .device/s48e84: its CLI, GPU tests and
# wheel) against main's wheel (.device/s47m, 0c4130b), one machine (session 47's call8.sh, extended):
# 1. page_order_profile.py 16 consecutive b64_p4k b256_p2k (the engine path's decode step over
#    16-token pages), main / e84 / main / e84;
# 2. the same with the shared prompt's pages in random order, main / e84 (84's fallback);
# 3. scripts/gpu-check --no-build of 84 in the time left.
# Carry [".device/s47m", ".device/s48e84"]. Prediction (KERNEL_NOTES 84, written session 47):
# consecutive, the wgmma kernel b64_p4k 22.3 → ~20 µs a layer, b256_p2k 28.6 → ~24; random order
# within +2 % of main (two ballots and two shuffles a stage before the fallback); gpu-check green.
set -u
start=$SECONDS
limit=${1:-590}
s48=docs/perf/2026-12-06-session48
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e84=.device/s48e84; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c1
for run in main:consecutive e84:consecutive main:consecutive e84:consecutive main:random e84:random; do
  label=${run%%:*} order=${run#*:}
  PYTHONPATH=/tmp/w_$label timeout 40 python3 $s48/page_order_profile.py 16 $order b64_p4k b256_p2k >> $OUT/c1/page16_${order}_$label.txt 2>&1
  echo "== $label $order rc $? ($((SECONDS - start)) s)"; grep "replay span" $OUT/c1/page16_${order}_$label.txt | tail -2
done
(cd $OUT && tar -czf c1.tgz c1 && rm -rf c1)  # back even if the gpu-check is cut short
left=$((limit - 15 - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir .device/s48e84 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
grep -E "^\[  (PASSED|FAILED|  SKIPPED) " /tmp/gc/gpu-unit-tests.log | head -5
date -u
