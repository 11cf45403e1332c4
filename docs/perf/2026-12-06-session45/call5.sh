#!/usr/bin/env bash
# Session 45, call 5: session 44's call4.sh (torch.profiler timeline and ncu per kernel of the engine
# path's short fully shared rows, through 77's wheel and main's), then per-tile traces of one eager
# call of b512_p1k_s0 and p1k_b128_s0 through trace builds of the same two commits (.device/s45t77:
# 2125387, .device/s45tm: 6a485c1, both -DCHUNKTREE_TILE_TRACE=ON). Carry [".device/s41c",
# ".device/s44m", ".device/s45t77", ".device/s45tm"]. ~130 s.
# Prediction: the wgmma kernel holds the +4 µs, and its traces show it in each tile's start
# (taken -> first stage), not in its stages.
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session45
bash docs/perf/2026-12-06-session44/call4.sh
for b in e77=.device/s45t77 main=.device/s45tm; do
  label=${b%%=*}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/t_$label ${b#*=}/wheel/*.whl || exit 1
  for c in hydragen:b512_p1k_s0 cascade:p1k_b128_s0; do
    name=${c#*:}
    CHUNKTREE_TILE_TRACE=$OUT/trace_${label}_$name.csv CHUNKTREE_TILE_TRACE_CALL=6 PYTHONPATH=/tmp/t_$label timeout 60 \
      python3 $here/paged_tile_trace.py docs/perf/2026-12-06-session44/cases_profile_${c%%:*}.json $name 8 > $OUT/trace_${label}_$name.log 2>&1
    echo "== trace $label $name (rc $?, $((SECONDS - start)) s)"
    python3 bench/tile_trace.py $OUT/trace_${label}_$name.csv* 2>&1 | tee $OUT/trace_${label}_$name.txt | head -40
  done
done
# The cache path's kernels on the same two rows (the CLI's 'chunktree' impl runs first), for the
# engine path's ~12 µs over the cache path on them (committed H200 run: 29.0 against 17.3 µs).
for c in "b512_p1k_s0 --batch 512 --heads 8 --kv-heads 1" "p1k_b128_s0 --batch 128 --heads 32 --kv-heads 32"; do
  set -- $c; name=$1; shift
  timeout 60 ncu --clock-control none --graph-profiling node -k regex:"states|merge" --launch-count 16 \
    --metrics gpu__time_duration.sum,launch__grid_size .device/s44m/chunktree bench "$@" --dim 128 --prefix 1024 --suffix 0 \
    --chunk 64 --repeats 3 --settle-ms 0 > $OUT/ncu_cli_$name.txt 2>&1
  echo "== ncu cli $name rc $? ($((SECONDS - start)) s)"
  grep -E "^  [a-z_].*\(|duration|grid_size" $OUT/ncu_cli_$name.txt | head -24
done
