#!/usr/bin/env bash
# Session 60, after call_e103.sh: per-tile traces of main (8eeda17, ad73297's kernels) and experiment
# 103 (exp103 f5a056e), both built with -DCHUNKTREE_TILE_TRACE=ON (`.device/s60/main_trace.gz`,
# `.device/s60/e103_trace.gz`), on the long-tile rows that claims still lose: gqa-llama3 b64_p2k and
# flashinfer-cascade p8k_b128_s256 and p32k_b256_s256 (bench/trace_rows.sh, the 5th eager call).
# Carry [".device/s60"].
x=/tmp/x60t && rm -rf $x && mkdir -p $x
gunzip -c .device/s60/main_trace.gz > $x/main && gunzip -c .device/s60/e103_trace.gz > $x/e103 && chmod +x $x/* || exit 1
cat > $x/rows.txt <<'ROWS'
gqa_b64_p2k --batch 64 --heads 32 --kv-heads 8 --dim 128 --prefix 2048 --suffix 512
fi_p8k_b128_s256 --batch 128 --heads 32 --kv-heads 32 --dim 128 --prefix 8192 --suffix 256
fi_p32k_b256_s256 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 256
ROWS
exec bench/trace_rows.sh "$OUT" $x/rows.txt "main=$x/main" "e103=$x/e103"
