#!/usr/bin/env bash
# For the next session: where the engine path's wgmma tiles still lose to the cache path's after 77
# (28.5 against 19.0 us a layer on one H100, session 41 call 1; long-scoreboard stalls 2.4 per issue
# left of 5.8). Nsight Compute's source view of one replayed wgmma launch of each path: warp-state
# samples per SASS instruction (SourceCounters), printed as CSV, so that the producer's loop (the
# window's reload every 32 runs, copy_segment's address arithmetic and cp.async issue, the empty-slot
# waits) and the consumers' full-barrier waits can be told apart; with both paths' memory sections
# (L2 hit rate, DRAM throughput), which session 41 measured on the engine path only. Build: main's wheel in
# .device/s42r/wheel/ (python3.12 -m pip wheel . --no-deps -w W). Carry [".device/s42r"].
# Prediction (write before running): the paged kernel's samples sit on the consumers' full-barrier
# waits (they wait for K and V), and the producer's on the cp.async issue and the empty-slot waits
# rather than on a record load; if a record load (LDG of the window) holds >10 % of the producer's
# samples, prefetching the next window is the next experiment.
start=$SECONDS
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s42/site .device/s42r/wheel/*.whl || exit 1
for impl in chunktree-graph chunktree-paged-graph; do
  PYTHONPATH=/tmp/s42/site timeout 150 ncu --clock-control none --graph-profiling node --section SourceCounters --section WarpStateStats --section MemoryWorkloadAnalysis --section SpeedOfLight \
    --import-source yes -k regex:wgmma_states --launch-skip 8 --launch-count 1 -o /tmp/src_$impl python3 bench/decode_loop.py \
    /tmp/ncu_$impl.csv --cases b64_p4k --impls $impl --layers 4 --steps 2 --warmup 2 > $OUT/ncu_run_$impl.txt 2>&1
  echo "$impl rc $? at $((SECONDS - start)) s"
  ncu --import /tmp/src_$impl.ncu-rep --page source --csv --print-source sass > $OUT/sass_$impl.csv 2>&1
  ncu --import /tmp/src_$impl.ncu-rep --page details > $OUT/details_$impl.txt 2>&1
  ls -la $OUT/sass_$impl.csv
done
gzip $OUT/sass_*.csv; date -u
