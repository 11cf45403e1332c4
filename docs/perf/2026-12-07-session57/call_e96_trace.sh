#!/usr/bin/env bash
# Session 57, after call_e96.sh on the same machine: per-tile traces of experiment 96 (`.device/s57b/
# e96_trace.gz`, exp96 8947cc0 built with -DCHUNKTREE_TILE_TRACE=ON) beside main's kernels
# (`.device/s57/e95rp_trace.xz`, exp95rp 9b2e97e with the partition off: k 0 is main's order), on
# spec-decode's s8 and s264 rows and hydragen-micro's b1024_p2k_s64, the 5th (eager) call of each,
# with clocks.sm and power sampled every 20 ms beside them. They show where the mma.sync tiles
# start against the wgmma rounds, with claims and without. Carry [".device/s57", ".device/s57b"].
set -u
x=/tmp/x57t && rm -rf $x && mkdir -p $x $OUT/tr
xz -dc .device/s57/e95rp_trace.xz > $x/main && gunzip -c .device/s57b/e96_trace.gz > $x/e96 && chmod +x $x/* || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active --format=csv -lms 20 > $OUT/tr/clocks.csv &
sampler=$!
pack() { kill $sampler 2> /dev/null; tar -C $OUT -czf $OUT/trace96.tgz tr && rm -rf $OUT/tr; date -u; }
trap pack EXIT
trace() {  # build name shape flags...
  local build=$1 name=$1_$2; shift 2
  echo "== $name $(date -u +%T.%N)" >> $OUT/tr/marks.txt
  CHUNKTREE_PROBE_WGMMA_SMS=0 CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 \
    timeout 40 $x/$build bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: rc $?"
  echo "== $name"; grep -h "chunktree " $OUT/tr/${name}_bench.txt | head -1
  python3 bench/tile_trace.py $OUT/tr/$name.csv $OUT/tr/$name.csv.wgmma 2>&1 | head -14
}
for b in main e96; do
  trace $b mha_s8 --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
  trace $b gqa_s8 --batch 256 --heads 32 --kv-heads 8 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
  trace $b mha_s264 --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 264 --queries 8
  trace $b b1024_s64 --batch 1024 --heads 8 --kv-heads 1 --dim 128 --prefix 2048 --suffix 64
done
