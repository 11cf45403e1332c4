#!/usr/bin/env bash
# Session 42, call 3: session 41's next_ncu_source.sh (its prediction stands: the paged kernel's samples
# on the consumers' full-barrier waits, the producer's on cp.async issue and empty-slot waits rather
# than a record load), through main's wheel (.device/s41c, 2125387's code) for both paths, and through
# e78's (.device/s42y) for the engine path, to see where 78's extra long-scoreboard stalls (2.4 -> 3.5
# per issue in call 2) sit. Prediction for e78: on the instruction that first reads the next window's
# record register (the rotation), i.e. a wait for a load issued too recently, every 32 runs or every
# run if the compiler selects between the windows each iteration. Carry [".device/s41c", ".device/s42y"].
start=$SECONDS
for b in s41c s42y; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for run in s41c:chunktree-graph s41c:chunktree-paged-graph s42y:chunktree-paged-graph; do
  b=${run%%:*}; impl=${run#*:}; tag=${b}_$impl
  PYTHONPATH=/tmp/$b/site timeout 150 ncu --clock-control none --graph-profiling node --section SourceCounters --section WarpStateStats --section MemoryWorkloadAnalysis --section SpeedOfLight \
    --import-source yes -k regex:wgmma_states --launch-skip 8 --launch-count 1 -o /tmp/src_$tag python3 bench/decode_loop.py \
    /tmp/ncu_$tag.csv --cases b64_p4k --impls $impl --layers 4 --steps 2 --warmup 2 > $OUT/ncu_run_$tag.txt 2>&1
  echo "$tag rc $? at $((SECONDS - start)) s"
  ncu --import /tmp/src_$tag.ncu-rep --page source --csv --print-source sass > $OUT/sass_$tag.csv 2>&1
  ncu --import /tmp/src_$tag.ncu-rep --page details > $OUT/details_$tag.txt 2>&1
  ls -la $OUT/sass_$tag.csv; grep -E "Duration|DRAM Throughput|L2 Hit" $OUT/details_$tag.txt | head -5
done
gzip $OUT/sass_*.csv; date -u
