#!/usr/bin/env bash
# Session 63's fourth call. Carry [".device/s63f", ".carry", ".device/probe"].
#   On an H200: the committed run owed since session 44 (call2.sh's H200 branch).
#   On an H100: for the partition's refit (KERNEL_NOTES session 63), a k sweep of four more rows whose
#     packed mma.sync tiles run beside wgmma tiles, on main's own plans (the probe build fixes the
#     wgmma tiles' SMs, capped below their count): k 0, 22, 32, 43, 54, 64, 81, 100, both orders.
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in *H200*) exec bash docs/perf/2026-12-07-session63/call2.sh ;; esac
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
x=/tmp/xk4 && rm -rf $x && mkdir -p $x
gunzip -c .device/probe/chunktree.gz > $x/probe && chmod +x $x/probe || exit 1
cat > $x/shapes.txt <<'ROWS'
fi_p32k_b128_s256 --batch 128 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 256
fi_p8k_b256_s256 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 8192 --suffix 256
llama_b256_p32k --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 32768 --suffix 512
tree_4k_x256_s256 --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 4096 --suffix 256
ROWS
builds=()
for k in 0 22 32 43 54 64 81 100; do
  printf '#!/bin/sh\nexport CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=%s\nexec %s "$@"\n' $k $x/probe > $x/k$k && chmod +x $x/k$k
  builds+=("k$k=$x/k$k")
done
SHAPES=$x/shapes.txt timeout 260 bench/compare.sh "$OUT/sweep4/times1" "${builds[@]}" -- > /dev/null 2>&1; cat "$OUT/sweep4/times1/compare.md"
echo "== pass 1 ($((SECONDS - start)) s)"
SHAPES=$x/shapes.txt timeout 260 bench/compare.sh "$OUT/sweep4/times2" $(printf '%s\n' "${builds[@]}" | tac) -- > /dev/null 2>&1; cat "$OUT/sweep4/times2/compare.md"
grep -h "probe:" "$OUT"/sweep4/times1/*.txt | sort | uniq -c | head -40
tar -C "$OUT" -czf /tmp/sweep4.tgz sweep4 && rm -rf "$OUT/sweep4" && mv /tmp/sweep4.tgz "$OUT/sweep4.tgz"
echo "== sweep done ($((SECONDS - start)) s)"
