#!/usr/bin/env bash
# For the next session (any Hopper card, ~25 s warm; carry [".device/probe", ".device/probe66"]): the
# trace instrument A/B of KERNEL_NOTES session 66. The four `small` rows traced by d2775a7's trace
# build (`.device/probe`: each stamp loads the global flag) and by main's with the flag read once a CTA
# (`.device/probe66`, session 66's tile_trace::begin()); the kernels are the same. Prediction: every
# phase within ±0.1 µs. Rebuild with the README's build notes and -DCHUNKTREE_TILE_TRACE=ON if gone.
x=/tmp/x66ab && rm -rf $x && mkdir -p $x
gunzip -c .device/probe/probe_trace.gz > $x/old && gunzip -c .device/probe66/probe_trace.gz > $x/new && chmod +x $x/old $x/new || exit 1
exec bench/trace_rows.sh "$OUT" "$(dirname "$0")/small_rows.txt" "old=$x/old" "new=$x/new" "old2=$x/old"
