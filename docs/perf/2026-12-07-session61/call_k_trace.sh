#!/usr/bin/env bash
# For the next session (written in session 61): per-tile traces of the partition at fixed k, to fit
# its two sides on the merged code before a refit of the model's price (KERNEL_NOTES session 61, the
# k sweep). `.device/s61p/probe_trace.gz` is branch probe106 (main 16c6154 plus
# CHUNKTREE_PROBE_WGMMA_SMS) built with -DCHUNKTREE_TILE_TRACE=ON. Rows: the two spec-decode rows
# whose best k the model misses (MHA s264) or nearly so (GQA s264), and two hydragen rows where
# experiment 102's card-rate price lost (b2048_p4k_s512, b4096_p8k_s512); each at k 52, 66, 72 and
# 86 (bench/trace_rows.sh: the 5th eager call, clocks sampled beside). From the traces: each wgmma
# round's length against the narrow tiles streaming beside it, and the narrow tiles' bytes per µs
# per SM, at each k. Carry [".device/s61p"]. ~90 s warm.
x=/tmp/x61kt && rm -rf $x && mkdir -p $x
gunzip -c .device/s61p/probe_trace.gz > $x/probe && chmod +x $x/probe || exit 1
cat > $x/rows.txt <<'ROWS'
spec_b256_mha_s264 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 4096 --suffix 264 --queries 8
spec_b256_gqa_s264 --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 4096 --suffix 264 --queries 8
hyd_b2048_p4k_s512 --batch 2048 --heads 8 --kv-heads 1 --dim 128 --prefix 4096 --suffix 512
hyd_b4096_p8k_s512 --batch 4096 --heads 8 --kv-heads 1 --dim 128 --prefix 8192 --suffix 512
ROWS
builds=()
for k in 52 66 72 86; do builds+=("k$k=env CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=$k $x/probe"); done
exec bench/trace_rows.sh "$OUT" $x/rows.txt "${builds[@]}"
