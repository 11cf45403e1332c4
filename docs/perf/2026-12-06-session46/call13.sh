#!/usr/bin/env bash
# Session 46, call 13: experiment 82 (branch exp82, a9ed302: one call of the run window's part copy
# where there were two inlined copies of it, 304 fewer instructions in the bf16 d 128 wgmma kernel;
# 8 more bytes of spill at d 128) against main (.device/s44m), on one machine:
# 1. replay_modes.py (flushed / warm / code warm) on b512_p1k_s0 and p1k_b128_s0, main, e82, main;
# 2. bench/compare.sh main / e82 / main / e82 over hydragen-micro (its short rows, and b4096_p8k_s0,
#    where 81's spills cost 1.8 %).
# Carry [".device/s44m", ".device/s46e82"]. ~200 s. Not a gpu-check: too little device time is left.
# Prediction (written before the run): flushed, the engine path's b512_p1k_s0 wgmma kernel −0.3 to
# −1 µs (one jump shorter by 5.8 KB on the window path), warm and code-warm unchanged; the cache path's
# rows within ±0.5 %, b4096_p8k_s0 included (the spill is 8 bytes, not 81's 32).
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session46
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s44m e82=.device/s46e82; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c13
for label in main e82 main; do
  for c in hydragen:b512_p1k_s0 cascade:p1k_b128_s0; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 $here/replay_modes.py docs/perf/2026-12-06-session45/cases_short_${c%%:*}.json ${c#*:} 16 2>&1 \
      | grep -v Warn | tee -a $OUT/c13/modes_$label.txt | grep span
  done
  echo "== modes $label ($((SECONDS - start)) s)"
done
timeout 200 bench/compare.sh $OUT/c13/cache main=.device/s44m/chunktree e82=.device/s46e82/tools/chunktree main2=.device/s44m/chunktree \
  e822=.device/s46e82/tools/chunktree -- hydragen-micro > $OUT/c13/compare.log 2>&1
echo "== compare rc $? ($((SECONDS - start)) s)"; cat $OUT/c13/cache/compare.md
(cd $OUT && tar -czf c13.tgz c13 && rm -rf c13)
date -u
