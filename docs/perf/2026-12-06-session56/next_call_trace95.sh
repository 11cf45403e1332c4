#!/usr/bin/env bash
# Session 56, for the next session: which reading of spec-decode's s8 rows holds (KERNEL_NOTES session
# 56). Their k 0 time is 4 wgmma rounds plus either the 2048 short mma.sync tiles run after them
# (~60–75 µs) or rounds ~25 % slower on all 132 SMs than on 66–110 (a power-capped clock). Per-tile
# traces of exp95rp 9b2e97e built with -DCHUNKTREE_TILE_TRACE=ON (`.device/s57/e95rp_trace.xz`) at
# k 0, 66, 76 and 110, the s8 MHA and GQA rows and the s264 MHA row, eager calls (the 5th), with
# clocks.sm and power.draw sampled every 20 ms beside them (bench/trace_rows.sh). The wgmma trace's
# rounds at k 0 against k 66–110 answer it: ~60 µs a round at k 0 means the private tiles after
# them, ~79 the clock. Carry [".device/s57"]. ~2 minutes.
x=/tmp/x57 && rm -rf $x && mkdir -p $x
xz -dc .device/s57/e95rp_trace.xz > $x/cli && chmod +x $x/cli || exit 1
cat > $x/rows.txt <<'ROWS'
mha_s8 --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
gqa_s8 --batch 256 --heads 32 --kv-heads 8 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
mha_s264 --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 264 --queries 8
ROWS
builds=()
for k in 0 66 76 110; do builds+=("k$k=env CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=$k $x/cli"); done
exec bench/trace_rows.sh "$OUT" $x/rows.txt "${builds[@]}"
