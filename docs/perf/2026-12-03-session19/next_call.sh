#!/usr/bin/env bash
# NOT RUN (session 19's device time was spent): the next session's first call. Traces with the
# `combined` stamp (e405a2f) where the mma.sync tile's end phase matters: no-share b512_gqa8x1_1k
# and b32_mha_1k (persistent grid, HBM saturated) and spec-decode b256_mha_p4k_s8_q8 (8192 one-stage
# private tiles, one CTA each). Needs main's CLI built with -DCHUNKTREE_TILE_TRACE=ON, stripped, at
# .device/s20t/chunktree_trace (cmake --preset default -B build/trace -DCHUNKTREE_TILE_TRACE=ON;
# ninja -C build/trace tools/chunktree). Prediction: KERNEL_NOTES, "What bounds the spec-decode MHA rows".
set -u
cli=.device/s20t/chunktree_trace
mkdir -p $OUT/r; date -u
trace() {  # name shape...
  local name=$1; shift
  CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/$name.csv timeout 60 $cli bench --repeats 3 --warm "$@" --dim 128 --chunk 64 > /dev/null 2>&1
  files=$OUT/r/$name.csv; [ -s $files.wgmma ] && files="$files $files.wgmma"
  echo "== $name"; python3 bench/tile_trace.py $files | tee $OUT/r/$name.txt
}
trace noshare_b512_gqa8x1_1k --batch 512 --heads 8 --kv-heads 1 --prefix 0 --suffix 1024
trace noshare_b32_mha_1k --batch 32 --heads 32 --kv-heads 32 --prefix 0 --suffix 1024
trace spec_b256_mha --batch 256 --heads 32 --kv-heads 32 --prefix 4096 --suffix 8 --queries 8
tar -C $OUT -czf $OUT/next_call.tgz r && rm -rf $OUT/r; date -u
