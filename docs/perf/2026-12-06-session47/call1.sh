#!/usr/bin/env bash
# Session 47, call 1: experiment 82 (branch exp82, a9ed302; .device/s46e82 with its tests built this
# session) against main's kernels (.device/s44m), on one machine, then 82's whole gpu-check:
# 1. replay_modes.py (flushed / warm / code warm), 32 replays a mode, on the engine path's two short
#    rows, in the order main, e82, main, e82 (two passes, so that a drift shows as main against main);
# 2. the engine path's decode-step layers (paged_profile.py b64_p4k b256_p2k), same order;
# 3. scripts/gpu-check --no-build of 82 in the time left (call 13 of session 46 found the cache path's
#    rows unchanged, b4096_p8k_s0 included, so no compare.sh here).
# Carry [".device/s44m", ".device/s46e82"]. Prediction (written before the run): flushed, the
# wgmma kernel of p1k_b128_s0 −0.5 to −2 µs and of b512_p1k_s0 −0.3 to −1 µs, warm and code-warm
# unchanged; the decode-step layers within ±1 %; gpu-check green.
set -u
start=$SECONDS
limit=${1:-590}
s46=docs/perf/2026-12-06-session46
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s44m e82=.device/s46e82; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c1
for label in main e82 main e82; do
  for c in hydragen:b512_p1k_s0 cascade:p1k_b128_s0; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 $s46/replay_modes.py docs/perf/2026-12-06-session45/cases_short_${c%%:*}.json ${c#*:} 32 2>&1 \
      | grep -v Warn | tee -a $OUT/c1/modes_$label.txt | grep span
  done
  PYTHONPATH=/tmp/s_$label timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py b64_p4k b256_p2k >> $OUT/c1/paged_profile_$label.txt 2>&1
  grep "replay span" $OUT/c1/paged_profile_$label.txt | tail -2
  echo "== $label ($((SECONDS - start)) s)"
done
(cd $OUT && tar -czf c1.tgz c1 && rm -rf c1)  # back even if the gpu-check is cut short
left=$((limit - 15 - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir .device/s46e82 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
date -u
