#!/usr/bin/env bash
# Session 63's sixth call (an H100; 318 s of device time left): session 61's call_k_trace.sh, never
# run, on d2775a7's probe build (`.device/probe/probe_trace.gz`: main + probe_wgmma_sms.patch, built
# with -DCHUNKTREE_TILE_TRACE=ON). Per-tile traces of the partition at fixed k, for the refit of the
# wide side's price beside a narrow stream (KERNEL_NOTES session 63): each wgmma round's length
# against the narrow stream beside it. Rows: spec-decode b256 MHA s264 (wide rounds 1.2-1.34x their
# time alone), spec-decode b256 GQA s264 and gqa-llama3 b256_p32k (below their price), hydragen
# b4096_p8k_s512 (below it); k 66, 72, 80, 86. bench/trace_rows.sh packs the traces in one file.
# Carry [".device/probe"]. ~100 s warm.
x=/tmp/x63kt && rm -rf $x && mkdir -p $x
gunzip -c .device/probe/probe_trace.gz > $x/probe && chmod +x $x/probe || exit 1
cat > $x/rows.txt <<'ROWS'
spec_b256_mha_s264 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 4096 --suffix 264 --queries 8
spec_b256_gqa_s264 --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 4096 --suffix 264 --queries 8
hyd_b4096_p8k_s512 --batch 4096 --heads 8 --kv-heads 1 --dim 128 --prefix 8192 --suffix 512
llama_b256_p32k --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 32768 --suffix 512
ROWS
builds=()
for k in 66 72 80 86; do builds+=("k$k=env CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=$k $x/probe"); done
exec bench/trace_rows.sh "$OUT" $x/rows.txt "${builds[@]}"
