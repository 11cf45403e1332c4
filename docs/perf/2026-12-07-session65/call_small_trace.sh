#!/usr/bin/env bash
# For a later session (any Hopper card, ~60 s warm; carry [".device/probe"]): per-tile traces of the
# four `small` rows, to see where the mma.sync kernel's ~5.8 µs for a one-stage tile goes before
# anything is built for P5 (KERNEL_NOTES session 65): the stamps taken -> handed (the record and Q
# landed) -> first_stage -> stages_done -> combined -> stored. The build is d2775a7's probe build with
# -DCHUNKTREE_TILE_TRACE=ON (`.device/probe/probe_trace.gz`; without CHUNKTREE_PROBE_WGMMA_SMS it plans as
# main; main's GPU code is d2775a7's). Rebuild it with the README's build notes and
# ../2026-12-07-session62/probe_wgmma_sms.patch if it is gone.
x=/tmp/x65st && rm -rf $x && mkdir -p $x
gunzip -c .device/probe/probe_trace.gz > $x/trace && chmod +x $x/trace || exit 1
cat > $x/rows.txt <<'ROWS'
b1_gqa_512 --batch 1 --heads 32 --kv-heads 8 --dim 128 --prefix 0 --suffix 512
b4_gqa_p512_s64 --batch 4 --heads 32 --kv-heads 8 --dim 128 --prefix 512 --suffix 64
b8_mha_p256_s16 --batch 8 --heads 32 --kv-heads 32 --dim 128 --prefix 256 --suffix 16
b8_gqa_p1k_s0 --batch 8 --heads 32 --kv-heads 8 --dim 128 --prefix 1024 --suffix 0
ROWS
exec bench/trace_rows.sh "$OUT" $x/rows.txt "main=$x/trace"
