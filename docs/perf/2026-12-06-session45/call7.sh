#!/usr/bin/env bash
# Session 45, call 7: call 6 placed the replayed wgmma kernel's loss on b512_p1k_s0 at 79 -> 79b (one
# sample each; main's own replays spread 13.9-16.4 us). 79b deferred the window's load from the tile's
# start to the first stage past the item's first run. 80w (main + the window loaded at the tile's start
# wherever the first stage reaches past the first run, as 79 did; 79f's lead path otherwise) against
# 77 once and main twice, in turn, on the three short rows (cut to fit the session's last device
# time). Carry [".device/s41c", ".device/s44m", ".device/s45w80w"]. ~90 s.
# Prediction: 80w's wgmma kernel at 79's (b512_p1k_s0 ~12.4 us, 77's), main's 14-16.
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session45
nvidia-smi --query-gpu=name --format=csv,noheader; date -u
for b in e77=.device/s41c main=.device/s44m w80w=.device/s45w80w main=.device/s44m w80w=.device/s45w80w; do
  label=${b%%=*}
  [ -d /tmp/s_$label ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_$label ${b#*=}/wheel/*.whl || exit 1
  for cases in $here/cases_short_hydragen.json $here/cases_short_cascade.json; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 docs/perf/2026-12-06-session44/paged_row_profile.py $cases 16 >> $OUT/profile_$label.txt 2>&1
  done
  echo "== $label ($((SECONDS - start)) s)"; grep " span " $OUT/profile_$label.txt | tail -3
done
