#!/usr/bin/env bash
# Session 56, for the next session: which reading of spec-decode's s8 rows holds (KERNEL_NOTES session
# 56). Their k 0 time is 4 wgmma rounds plus either the 2048 short mma.sync tiles run after them
# (~60–75 µs) or rounds ~25 % slower on all 132 SMs than on 66–110 (a power-capped clock). Per-tile
# traces of exp95rp 9b2e97e built with -DCHUNKTREE_TILE_TRACE=ON (`.device/s57/e95rp_trace.xz`) at
# k 0, 66, 76 and 110, the s8 MHA and GQA rows and the s264 MHA row, eager calls (the 5th), with
# clocks.sm and power.draw sampled every 20 ms beside them. The wgmma trace's rounds at k 0 against
# k 66–110 answer it: ~60 µs a round at k 0 means the private tiles after them, ~79 the clock.
# Carry [".device/s57"]. ~2 minutes.
set -u
x=/tmp/x57 && rm -rf $x && mkdir -p $x $OUT/tr
xz -dc .device/s57/e95rp_trace.xz > $x/cli && chmod +x $x/cli || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active --format=csv -lms 20 > $OUT/tr/clocks.csv &
sampler=$!
pack() { kill $sampler 2> /dev/null; tar -C $OUT -czf $OUT/trace95.tgz tr && rm -rf $OUT/tr; date -u; }
trap pack EXIT
trace() {  # name k shape flags...
  local name=$1 k=$2; shift 2
  echo "== $name $(date -u +%T.%N)" >> $OUT/tr/marks.txt
  CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=$k CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 \
    timeout 40 $x/cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: rc $?"
  echo "== $name"; grep -h "^probe:" $OUT/tr/${name}_bench.txt | head -2
  python3 bench/tile_trace.py $OUT/tr/$name.csv $OUT/tr/$name.csv.wgmma 2>&1 | head -24
}
for k in 0 66 76 110; do
  trace mha_s8_k$k $k --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
  trace gqa_s8_k$k $k --batch 256 --heads 32 --kv-heads 8 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
  trace mha_s264_k$k $k --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 264 --queries 8
done
