#!/usr/bin/env bash
# Session 46, call 9: is the engine path's short-row loss (77 -> main) a cold start? Call 8's ncu
# samples of the CLI's wgmma kernel on b512_p1k_s0 put 23 % of its warps' samples on instruction
# fetch (no_inst), most at the first instructions of the producer's code regions; the replay traces
# of call 7 have every CTA stall in lockstep. 79-79f added producer code on the tile's start.
# 1. Each build's replayed call (77: .device/s41c, main: .device/s44m), flushed before each replay
#    and warm, on b512_p1k_s0 and p1k_b128_s0 (replay_modes.py, 16 replays a mode).
# 2. ncu of one replayed wgmma launch of b512_p1k_s0 per build (--cache-control all, as the bench's
#    flush; sampling every 2^6 cycles): warp-state samples per SASS instruction.
# Modes: cold (flushed), warm (replayed just before), code (flushed, then the same row over other
# buffers replayed: code in the L2, data and tables cold).
# Prediction: warm and code, main is within 0.5 us of 77 on both rows; cold, 1.5-3 us over (calls 5-7);
# main's no_inst samples exceed 77's, on the producer's code.
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session46
cases=docs/perf/2026-12-06-session45
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in e77=.device/s41c main=.device/s44m; do
  label=${b%%=*}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_$label ${b#*=}/wheel/*.whl || exit 1
done
for pass in 1 2; do
  for label in e77 main; do
    for c in hydragen:b512_p1k_s0 cascade:p1k_b128_s0; do
      PYTHONPATH=/tmp/s_$label timeout 60 python3 $here/replay_modes.py $cases/cases_short_${c%%:*}.json ${c#*:} 16 2>&1 | grep -v Warn | tee -a $OUT/modes_$label.txt | grep span
    done
    echo "== $label pass $pass ($((SECONDS - start)) s)"
  done
done
for label in e77 main; do
  PYTHONPATH=/tmp/s_$label timeout 120 ncu --clock-control none --cache-control all --graph-profiling node --nvtx --nvtx-include "replays/" \
    --section SourceCounters --section WarpStateStats --sampling-interval 1 --import-source no --metrics gpu__time_duration.sum \
    -k regex:wgmma_states --launch-skip 2 --launch-count 1 -o /tmp/src_$label \
    python3 $here/replay_modes.py $cases/cases_short_hydragen.json b512_p1k_s0 ncu > $OUT/ncu_$label.log 2>&1
  echo "== ncu $label rc $? ($((SECONDS - start)) s)"
  ncu -i /tmp/src_$label.ncu-rep --page details > $OUT/details_$label.txt 2>&1
  grep -E "gpu__time_duration|Grid Size" $OUT/details_$label.txt
  ncu -i /tmp/src_$label.ncu-rep --page source --print-source sass --csv > $OUT/sass_$label.csv 2>&1
done
gzip $OUT/sass_*.csv
(cd $OUT && tar -czf call9.tgz modes_* ncu_*.log details_* sass_*.csv.gz && rm -f modes_* ncu_*.log details_* sass_*.csv.gz)
date -u
