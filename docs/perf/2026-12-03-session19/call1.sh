#!/usr/bin/env bash
# Session 19, call 1: experiment 43's traces (session 18's call5.sh, as planned) and the same
# trace of three no-share rows of P4 at main's mma.sync kernel (where a tile's time goes now).
# CLI: branch exp43-wgmma-trace (4280051) built with -DCHUNKTREE_TILE_TRACE=ON, stripped, in
# .device/s19t/ beside that branch's bench/tile_trace.py.
set -u
cli=.device/s19t/chunktree_trace; tt=.device/s19t/tile_trace.py
mkdir -p $OUT/r; date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
trace() {  # name split shape...
  local name=$1 split=$2; shift 2
  CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/${name}_split$split.csv timeout 60 $cli bench --repeats 3 --warm "$@" --dim 128 --chunk 64 --split $split > $OUT/r/${name}_split$split.bench.txt 2>&1
  echo "== $name split $split"
  files=$OUT/r/${name}_split$split.csv; [ -s $files.wgmma ] && files="$files $files.wgmma"
  python3 $tt $files | tee $OUT/r/${name}_split$split.txt
}
for split in 0 512; do
  trace b64_p2k $split --batch 64 --heads 32 --kv-heads 8 --prefix 2048 --suffix 512
  trace b512_p1k_s512 $split --batch 512 --heads 8 --kv-heads 1 --prefix 1024 --suffix 512
done
trace noshare_b512_gqa8x1_1k 0 --batch 512 --heads 8 --kv-heads 1 --prefix 0 --suffix 1024
trace noshare_b32_mha_1k 0 --batch 32 --heads 32 --kv-heads 32 --prefix 0 --suffix 1024
trace noshare_b64_gqa8_4k 0 --batch 64 --heads 32 --kv-heads 8 --prefix 0 --suffix 4096
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r; date -u
