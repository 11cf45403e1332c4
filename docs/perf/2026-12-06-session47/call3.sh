#!/usr/bin/env bash
# Session 47, call 3: where the engine path's decode-step wgmma kernel spends its stages, against the
# cache path's on the same case (b256_p2k: 256 samples of a 2K prompt, 32 q / 8 kv heads, d 128).
# Call 1 found 82's shorter window loop worth −2.3 % of that kernel (16-token pages: 8 runs in
# every 128-position stage), so the producer's work per stage may pace the stages. Nsight Compute on
# one replayed wgmma launch of each path (main 0c4130b's wheel, .device/s47m): warp states and
# SASS-level samples (summarised by sass_runs.py of session 46 afterwards). Carry [".device/s47m"].
# Prediction (written before the run): engine path, the consumers' samples waiting on a stage's full
# barrier (long scoreboard at the mbarrier wait) ≥ 30 % of theirs, and the producer's samples mostly
# issue-bound in the window's loop (shuffles, box arithmetic); cache path, the consumers' full-
# barrier waits ≤ half the engine path's share.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_main .device/s47m/wheel/*.whl || exit 1
for impl in chunktree-paged-graph chunktree-graph; do
  PYTHONPATH=/tmp/s_main timeout 150 ncu --clock-control none --graph-profiling node -k regex:wgmma_states --launch-skip 8 --launch-count 1 \
    --section WarpStateStats --section SpeedOfLight --section SourceCounters --import-source no -o /tmp/rep_$impl \
    python3 bench/decode_loop.py /tmp/x_$impl.csv --cases b256_p2k --impls $impl --layers 4 --steps 2 --warmup 2 > $OUT/ncu_$impl.log 2>&1
  echo "== $impl rc $? ($((SECONDS - start)) s)"
  ncu -i /tmp/rep_$impl.ncu-rep --page details > $OUT/details_$impl.txt 2>&1
  grep -E "Duration|DRAM Throughput|Warp Cycles Per Issued" $OUT/details_$impl.txt | head -6
  ncu -i /tmp/rep_$impl.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > $OUT/sass_$impl.csv.gz
  python3 docs/perf/2026-12-06-session46/sass_runs.py $OUT/sass_$impl.csv.gz | head -1
done
date -u
