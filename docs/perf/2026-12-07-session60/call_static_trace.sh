#!/usr/bin/env bash
# For a warm machine after call_e104.sh (written in session 60): why one CTA per tile runs slower in
# the claims branches' kernels than in main's (hydragen b512_p1k_s64 +3-4 % in session 60; b512_p1k_s256
# 49.6 against 47.2 µs in session 59). Per-tile traces of main (`.device/s60/main_trace.gz`, 8eeda17)
# and exp103 (`.device/s60/e103_trace.gz`, whose one-CTA-per-tile path is exp104's) on those rows,
# where 100's rule keeps one CTA per tile (one-stage tiles at 1.9 a slot) or, for s256, with
# CHUNKTREE_PROBE_CLAIM_ALL unset the same rule claims (so s256 compares claims with main's grid).
# Carry [".device/s60"]. ~30 s on a warm machine.
x=/tmp/x60s && rm -rf $x && mkdir -p $x
gunzip -c .device/s60/main_trace.gz > $x/main && gunzip -c .device/s60/e103_trace.gz > $x/e103 && chmod +x $x/* || exit 1
cat > $x/rows.txt <<'ROWS'
b512_p1k_s64 --batch 512 --heads 8 --kv-heads 1 --dim 128 --prefix 1024 --suffix 64
b512_p1k_s256 --batch 512 --heads 8 --kv-heads 1 --dim 128 --prefix 1024 --suffix 256
ROWS
exec bench/trace_rows.sh "$OUT" $x/rows.txt "main=$x/main" "e103=$x/e103"
