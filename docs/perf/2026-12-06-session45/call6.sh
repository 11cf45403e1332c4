#!/usr/bin/env bash
# Session 45, call 6: which step of 79-79f slows the engine path's short fully shared rows in a
# replayed graph (call 5: the wgmma kernel 12.4 -> 16.4 us in the timeline of b512_p1k_s0, on the H100,
# while ncu alone gives +1.5 us and the eager traces no change). Each wheel's torch.profiler timeline
# of b512_p1k_s0, p1k_b128_s0 and p1k_b256_s0 (paged_row_profile.py, 12 replays): 77 (2125387), main
# (6a485c1), 79 (59895b8), 79b (fe24629), 79c (f35674d), 80p (main + the four maps' descriptors
# prefetched at the kernel's start), 80t (main without the early trigger of the chained launch), then
# 77 and main again. Carry the nine .device dirs named below. ~100 s.
# Prediction: the step that moved 77's window-free cursor to the window (79) holds it; 80p and 80t
# change it by under 1 us.
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session45
nvidia-smi --query-gpu=name --format=csv,noheader; date -u
for b in e77=.device/s41c main=.device/s44m w79=.device/s45w79 w79b=.device/s45w79b w79c=.device/s45w79c w80p=.device/s45w80p \
         w80t=.device/s45w80t e77=.device/s41c main=.device/s44m; do
  label=${b%%=*}
  [ -d /tmp/s_$label ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_$label ${b#*=}/wheel/*.whl || exit 1
  for cases in $here/cases_short_hydragen.json $here/cases_short_cascade.json; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 docs/perf/2026-12-06-session44/paged_row_profile.py $cases 12 >> $OUT/profile_$label.txt 2>&1
  done
  echo "== $label ($((SECONDS - start)) s)"; grep " span " $OUT/profile_$label.txt | tail -3
done
