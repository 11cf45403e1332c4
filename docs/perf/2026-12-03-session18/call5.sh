#!/usr/bin/env bash
# NOT RUN (session 18's device time was spent). Experiment 43's first call: why 42's whole prompts
# lose on the small mixed plans. Needs a CLI built with -DCHUNKTREE_TILE_TRACE=ON from branch
# exp43-wgmma-trace (or exp43.patch beside this file on main), stripped to .device/s18t/chunktree_trace
# (cmake --preset default -B build/trace -DCHUNKTREE_TILE_TRACE=ON; ninja -C build/trace tools/chunktree).
# Traces one eager call of each kernel on gqa-llama3 b64_p2k and hydragen b512_p1k_s512, whole
# (42's choice) and split at 512 (the faster), and prints both kernels' timelines on one clock.
# CHUNKTREE_TILE_TRACE_CALL=5: the 5th eager call, the last warm-up of the case's `chunktree` row
# (the `chunktree-noshare` row that follows would overwrite the mma.sync trace).
set -u
cli=.device/s18t/chunktree_trace
mkdir -p $OUT/r; date -u
for shape in "b64_p2k --batch 64 --heads 32 --kv-heads 8 --prefix 2048 --suffix 512" "b512_p1k_s512 --batch 512 --heads 8 --kv-heads 1 --prefix 1024 --suffix 512"; do
  set -- $shape; name=$1; shift
  for split in 0 512; do
    CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/${name}_split$split.csv timeout 30 $cli bench --repeats 3 --warm "$@" --split $split > /dev/null 2>&1
    echo "== $name split $split"; python3 bench/tile_trace.py $OUT/r/${name}_split$split.csv $OUT/r/${name}_split$split.csv.wgmma | tee $OUT/r/${name}_split$split.txt
  done
done
tar -C $OUT -czf $OUT/call5.tgz r && rm -rf $OUT/r; date -u
