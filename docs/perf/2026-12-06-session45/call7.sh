#!/usr/bin/env bash
# For session 46, call 7. Call 6 placed the replayed wgmma kernel's loss on the engine path's short
# fully shared rows at 79 -> 79b (one sample each; main's own replays spread 13.9-16.4 us on
# b512_p1k_s0). 79b deferred the window's load from the tile's start to the first stage past the
# item's first run.
# 1. Replayed timelines (16 replays, medians) of 80w (main + the window loaded at the tile's
#    start wherever the first stage reaches past the first run, as 79 did; 79f's lead path
#    otherwise) against 77 once and main twice, in turn, on the three short rows.
# 2. Per-tile traces of one replay of b512_p1k_s0 and p1k_b128_s0 through trace builds of 77
#    (.device/s45tr77: branch trace77, a326c35) and main (.device/s45tr: eda217e), which show where a
#    replay's CTAs spend what eager calls do not.
# 3. If 80w's wgmma kernel on b512_p1k_s0 is at least 1 us under main's in both of its runs:
#    ab_paged.sh (the engine path's A/B, compare.sh over the cache path, gated gpu-check of 80w).
# Carry [".device/s41c", ".device/s44m", ".device/s45w80w", ".device/s45tr", ".device/s45tr77"].
# ~130 s, ~520 s with step 3: `call7.sh 590` on a run of timeout 600.
# Prediction: 80w's wgmma kernel at 79's (b512_p1k_s0 ~12.4 us, 77's), main's 14-16 us; the replay
# traces show main's CTAs longer between taking a tile and its first stage than 77's.
set -u
start=$SECONDS
limit=${1:-590}
here=docs/perf/2026-12-06-session45
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in e77=.device/s41c main=.device/s44m w80w=.device/s45w80w main=.device/s44m w80w=.device/s45w80w; do
  label=${b%%=*}
  [ -d /tmp/s_$label ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_$label ${b#*=}/wheel/*.whl || exit 1
  for cases in $here/cases_short_hydragen.json $here/cases_short_cascade.json; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 docs/perf/2026-12-06-session44/paged_row_profile.py $cases 16 >> $OUT/profile_$label.txt 2>&1
  done
  echo "== $label ($((SECONDS - start)) s)"; grep " span " $OUT/profile_$label.txt | tail -3
done
for b in e77=.device/s45tr77 main=.device/s45tr; do
  label=${b%%=*}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/t_$label ${b#*=}/wheel/*.whl || exit 1
  for c in hydragen:b512_p1k_s0 cascade:p1k_b128_s0; do
    name=${c#*:}
    PYTHONPATH=/tmp/t_$label timeout 60 python3 $here/paged_replay_trace.py $here/cases_short_${c%%:*}.json $name 8 \
      $OUT/rtrace_${label}_$name.csv > $OUT/rtrace_${label}_$name.log 2>&1
    echo "== replay trace $label $name (rc $?, $((SECONDS - start)) s)"
    python3 bench/tile_trace.py $OUT/rtrace_${label}_$name.csv* 2>&1 | tee $OUT/rtrace_${label}_$name.txt | head -14
  done
done
(cd $OUT && tar -czf diag.tgz profile_* rtrace_*; rm -f profile_* rtrace_*)
gate=$(cd /tmp && tar -xzf $OUT/diag.tgz profile_main.txt profile_w80w.txt && python3 - <<'PY'
import re
def wgmma(label):
    return [float(re.search(r"wgmma ([0-9.]+)", l).group(1)) for l in open(f"/tmp/profile_{label}.txt") if l.startswith("hydragen-micro/b512_p1k_s0: span")]
m, w = wgmma("main"), wgmma("w80w")
print("yes" if m and w and max(w) <= min(m) - 1.0 else "no", m, w)
PY
)
echo "gate (80w's b512_p1k_s0 wgmma >= 1 us under main's): $gate"
case $gate in yes*) bash $here/ab_paged.sh .device/s44m .device/s45w80w w80w $((limit - (SECONDS - start))) ;; esac
date -u
