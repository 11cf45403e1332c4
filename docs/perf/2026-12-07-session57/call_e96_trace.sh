#!/usr/bin/env bash
# Session 57, after call_e96.sh on the same machine: per-tile traces of experiment 96 (`.device/s57b/
# e96_trace.gz`, exp96 8947cc0 built with -DCHUNKTREE_TILE_TRACE=ON) beside main's kernels
# (`.device/s57/e95rp_trace.xz`, exp95rp 9b2e97e with the partition off: k 0 is main's order), on
# spec-decode's s8 and s264 rows and hydragen-micro's b1024_p2k_s64, the 5th (eager) call of each,
# with clocks.sm and power sampled every 20 ms beside them (bench/trace_rows.sh). They show where the
# mma.sync tiles start against the wgmma rounds, with claims and without. Carry [".device/s57", ".device/s57b"].
x=/tmp/x57t && rm -rf $x && mkdir -p $x
xz -dc .device/s57/e95rp_trace.xz > $x/main && gunzip -c .device/s57b/e96_trace.gz > $x/e96 && chmod +x $x/* || exit 1
cat > $x/rows.txt <<'ROWS'
mha_s8 --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
gqa_s8 --batch 256 --heads 32 --kv-heads 8 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
mha_s264 --batch 256 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 264 --queries 8
b1024_s64 --batch 1024 --heads 8 --kv-heads 1 --dim 128 --prefix 2048 --suffix 64
b64_mha_s8 --batch 64 --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
b64_gqa_s8 --batch 64 --heads 32 --kv-heads 8 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8
ROWS
exec bench/trace_rows.sh "$OUT" $x/rows.txt "main=env CHUNKTREE_PROBE_WGMMA_SMS=0 $x/main" "e96=$x/e96"
