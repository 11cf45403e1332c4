#!/usr/bin/env bash
# Session 48, call 4: why 84b is +4.7 % slower than main in the engine path's decode-step wgmma kernel
# where the shared prompt's pages are in random order (calls 2 and 3; 84c's one-test-a-stage did not
# remove it, so the check's instructions are not the cost). Nsight Compute on one replayed wgmma
# launch of b256_p2k over 16-token pages in random order, main (.device/s47m) and 84b
# (.device/s48e84bw): duration, warp states, SASS-level samples (sass_runs.py of session 46).
# Carry [".device/s47m", ".device/s48e84bw"]. Prediction (written before the run): 84b's producer
# shows more samples than main's in the window's part copy (its issue of the 16-row boxes), and the
# consumers more waits on full stages; the duration 4-5 % longer.
set -u
start=$SECONDS
s48=docs/perf/2026-12-06-session48
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e84b=.device/s48e84bw; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
for label in main e84b; do
  PROFILE=0 PYTHONPATH=/tmp/w_$label timeout 120 ncu --clock-control none --graph-profiling node -k regex:wgmma_states --launch-skip 72 --launch-count 1 \
    --section WarpStateStats --section SpeedOfLight --section SourceCounters --import-source no -o /tmp/rep_$label \
    python3 $s48/page_order_profile.py 16 random b256_p2k > $OUT/ncu_$label.log 2>&1
  echo "== $label rc $? ($((SECONDS - start)) s)"
  ncu -i /tmp/rep_$label.ncu-rep --page details > $OUT/details_$label.txt 2>&1
  grep -E "Duration|DRAM Throughput|Warp Cycles Per Issued" $OUT/details_$label.txt | head -6
  ncu -i /tmp/rep_$label.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > $OUT/sass_$label.csv.gz
  python3 docs/perf/2026-12-06-session46/sass_runs.py $OUT/sass_$label.csv.gz | head -1
done
date -u
