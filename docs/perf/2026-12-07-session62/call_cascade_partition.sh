#!/usr/bin/env bash
# For a later session (written in session 62): what slows the cascade row's wgmma rounds beside the
# narrow stream (KERNEL_NOTES session 62, "Why 107 missed"). Needs `.device/probe/chunktree.gz` and
# `.device/probe/probe_trace.gz`: main with probe_wgmma_sms.patch applied (`git apply`), built plain
# and with -DCHUNKTREE_TILE_TRACE=ON. flashinfer-cascade p32k_b256_s256 at the 16384 split with the
# wgmma tiles on k = 0 (the split sweep's 564 µs), 64 (106's choice, 619 µs), 81 (the H200 price's
# choice) and 100 SMs, and whole spans at k 0 (main's plan); times first (bench/compare.sh, both
# orders), then each k traced (bench/trace_rows.sh). Carry [".device/probe"]. ~200 s warm.
x=/tmp/xcp && rm -rf $x && mkdir -p $x
gunzip -c .device/probe/chunktree.gz > $x/probe && gunzip -c .device/probe/probe_trace.gz > $x/probe_trace && chmod +x $x/probe $x/probe_trace || exit 1
cat > $x/shapes.txt <<'ROWS'
fi_p32k_b256_s256_split16384 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 256 --split 16384
fi_p32k_b256_s256 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 256
ROWS
builds=()
for k in 0 64 81 100; do
  printf '#!/bin/sh\nexport CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=%s\nexec %s "$@"\n' $k $x/probe > $x/k$k && chmod +x $x/k$k
  builds+=("k$k=$x/k$k")
done
SHAPES=$x/shapes.txt bench/compare.sh "$OUT/times1" "${builds[@]}" -- > /dev/null 2>&1; cat "$OUT/times1/compare.md"
SHAPES=$x/shapes.txt bench/compare.sh "$OUT/times2" $(printf '%s\n' "${builds[@]}" | tac) -- > /dev/null 2>&1; cat "$OUT/times2/compare.md"
head -1 $x/shapes.txt > $x/rows.txt
traced=()
for k in 0 64 81; do traced+=("k$k=env CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=$k $x/probe_trace"); done
exec bench/trace_rows.sh "$OUT/trace" $x/rows.txt "${traced[@]}"
