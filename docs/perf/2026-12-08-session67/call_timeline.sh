#!/usr/bin/env bash
# For the next session (any Hopper card, ~40 s warm; carry [".device/probe67"]): the whole call of eight
# rows on one clock (KERNEL_NOTES session 67): main's trace build from session 67 (`.device/probe67`:
# the tiles' stamps of session 66's instrument, plus each states CTA's entry and exit and each merge
# warp's entry, wait and exit). Its untraced kernels are main's (SASS compared in session 67).
# Rebuild with `cmake --preset default -B build/trace -DCHUNKTREE_TILE_TRACE=ON && ninja -C build/trace
# tools/chunktree`, gzipped as .device/probe67/probe_trace.gz, if gone.
x=/tmp/x67 && rm -rf $x && mkdir -p $x
gunzip -c .device/probe67/probe_trace.gz > $x/trace && chmod +x $x/trace || exit 1
exec bench/trace_rows.sh "$OUT" "$(dirname "$0")/timeline_rows.txt" "timeline=$x/trace"
