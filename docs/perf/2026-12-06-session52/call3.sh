#!/usr/bin/env bash
# Session 52, call 3: per-tile traces of the no-share rows of P4 (b32_mha_1k, b512_gqa8x1_1k,
# b32_mha_4k) with a trace build of main's CLI (-DCHUNKTREE_TILE_TRACE=ON, `.device/s52tr`), the 5th
# eager call of each (the first implementation's last warm-up), summarised by bench/tile_trace.py:
# when each CTA starts and finishes, each tile's phases, the hand-offs. Carry [".device/s52tr"].
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/tr /tmp/tr
gunzip -c .device/s52tr/chunktree.gz > /tmp/tr/chunktree && chmod +x /tmp/tr/chunktree || exit 1
for shape in "b32_mha_1k 32 32 32 1024" "b512_gqa8x1_1k 512 8 1 1024" "b32_mha_4k 32 32 32 4096"; do
  set -- $shape
  CHUNKTREE_TILE_TRACE=$OUT/tr/$1.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 /tmp/tr/chunktree bench --repeats 5 \
    --batch $2 --heads $3 --kv-heads $4 --suffix $5 > $OUT/tr/$1_bench.txt 2>&1 || echo "$1: bench rc $?"
  python3 bench/tile_trace.py $OUT/tr/$1.csv
done
(cd $OUT && tar -czf tr.tgz tr && rm -rf tr)
date -u
