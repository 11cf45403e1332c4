#!/usr/bin/env bash
# For the next session (any Hopper card, ~25 s warm; carry [".device/probe", ".device/probe66"]): the
# trace instrument A/B of KERNEL_NOTES session 66. The four `small` rows traced by d2775a7's trace
# build (`.device/probe`: each stamp loads the global flag) and by main's with the flag read once a CTA
# (`.device/probe66`, session 66's tile_trace::begin()); the kernels are the same. Prediction: every
# phase within ±0.1 µs. Rebuild with the README's build notes and -DCHUNKTREE_TILE_TRACE=ON if gone.
x=/tmp/x66ab && rm -rf $x && mkdir -p $x
gunzip -c .device/probe/probe_trace.gz > $x/old && gunzip -c .device/probe66/probe_trace.gz > $x/new && chmod +x $x/old $x/new || exit 1
cat > $x/rows.txt <<'ROWS'
b1_gqa_512 --batch 1 --heads 32 --kv-heads 8 --dim 128 --prefix 0 --suffix 512
b4_gqa_p512_s64 --batch 4 --heads 32 --kv-heads 8 --dim 128 --prefix 512 --suffix 64
b8_mha_p256_s16 --batch 8 --heads 32 --kv-heads 32 --dim 128 --prefix 256 --suffix 16
b8_gqa_p1k_s0 --batch 8 --heads 32 --kv-heads 8 --dim 128 --prefix 1024 --suffix 0
ROWS
exec bench/trace_rows.sh "$OUT" $x/rows.txt "old=$x/old" "new=$x/new" "old2=$x/old"
