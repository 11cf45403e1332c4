#!/usr/bin/env bash
# Session 49, call 4: experiment 85 where it applies, replayed plans. Call 3 timed `chunktree bench`,
# whose plans are loaded one-shot: their graphs capture eager launches (one mma.sync CTA per tile
# beside the wgmma kernel), which never read the live deal, so it measured nothing of 85. Here the
# engine path's replayed decode step (own_profile.py 14: 21-28 own tokens in the profiled steps, so
# the prompt stays whole) of b256_p2k and b128_p2k, main / e85 / main / e85, each kernel's GPU time
# and the replay span. Carry [".device/s49r", ".device/s49e85w"] (the wheels of 886272b and 45dbbeb).
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s49r e85=.device/s49e85w; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c4
for label in main e85 main e85; do
  PYTHONPATH=/tmp/w_$label timeout 60 python3 docs/perf/2026-12-06-session49/own_profile.py 14 b256_p2k b128_p2k >> $OUT/c4/own14_$label.txt 2>&1
  echo "== $label rc $? ($((SECONDS - start)) s)"; grep -E "replay span|mma_sync|wgmma" $OUT/c4/own14_$label.txt | tail -6 | cut -c1-150
done
date -u
