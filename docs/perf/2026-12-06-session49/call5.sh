#!/usr/bin/env bash
# Session 49, call 5: experiment 85 where its deal should not apply, and b128_p2k again (call 4: within
# its spread, e85 +0.6 % on the mean). own_profile.py, main / e85 / main / e85: OWN 0 (the decode
# loop's own tokens, 7-14: the prompt cut in two, no SM free) for b256_p2k and b64_p4k; OWN 30 (37-44:
# three steps a packed tile, the model's work on 136 slots outlasts the wgmma tiles) for b256_p2k;
# OWN 14 for b128_p2k. Carry [".device/s49r", ".device/s49e85w"]. Prediction: the OWN 0 and OWN 30
# rows within ±1 % (the same deal as main); b128_p2k within ±1.5 %.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s49r e85=.device/s49e85w; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c5
for label in main e85 main e85; do
  for run in "0 b256_p2k b64_p4k" "30 b256_p2k" "14 b128_p2k"; do
    set -- $run
    PYTHONPATH=/tmp/w_$label timeout 60 python3 docs/perf/2026-12-06-session49/own_profile.py $run >> $OUT/c5/own$1_$label.txt 2>&1
  done
  echo "== $label ($((SECONDS - start)) s)"; grep -h "replay span" $OUT/c5/own*_$label.txt | tail -4 | cut -c1-60
done
date -u
