#!/usr/bin/env bash
# Session 63's second call, for whatever card comes. Carry [".device/s63f", ".carry", ".device/probe"].
#   On an H200: the committed run owed since session 44 (main d2775a7, `.device/s63f`), then its GPU
#     unit tests in the time left.
#   On an H100: the cascade row's split plan (16384) at more k than call 1's (0, 64, 81, 100), to place
#     the narrow side's price against k: 72, 76, 81, 86, 90, 94, in both orders (no traces). All
#     output packed in one file (a call brings back 8).
start=$SECONDS
call_s=${CALL_S:-570}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
case "$card" in
  *H200*)
    bash bench/committed_run.sh .device/s63f "$OUT/run" 400 --full-grids
    echo "== committed run done ($((SECONDS - start)) s)"
    left=$((call_s - (SECONDS - start)))
    if [ $left -gt 60 ]; then
      x=/tmp/x63f && rm -rf $x && mkdir -p $x && xz -dc .device/s63f/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
      timeout $((left - 10)) $x/chunktree_gpu_tests > "$OUT/gpu_unit_tests.txt" 2>&1
      echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" "$OUT/gpu_unit_tests.txt" | tail -8
    fi
    ;;  # committed_run.sh packs its files in $OUT/run/run.tgz
  *)
    x=/tmp/xk && rm -rf $x && mkdir -p $x
    gunzip -c .device/probe/chunktree.gz > $x/probe && chmod +x $x/probe || exit 1
    echo "fi_p32k_b256_s256_split16384 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 256 --split 16384" > $x/shapes.txt
    builds=()
    for k in 72 76 81 86 90 94; do
      printf '#!/bin/sh\nexport CHUNKTREE_PROBE_WGMMA_SMS=%s\nexec %s "$@"\n' $k $x/probe > $x/k$k && chmod +x $x/k$k
      builds+=("k$k=$x/k$k")
    done
    SHAPES=$x/shapes.txt bench/compare.sh "$OUT/sweep/times1" "${builds[@]}" -- > /dev/null 2>&1; cat "$OUT/sweep/times1/compare.md"
    SHAPES=$x/shapes.txt bench/compare.sh "$OUT/sweep/times2" $(printf '%s\n' "${builds[@]}" | tac) -- > /dev/null 2>&1; cat "$OUT/sweep/times2/compare.md"
    tar -C "$OUT" -czf /tmp/sweep.tgz sweep && rm -rf "$OUT/sweep" && mv /tmp/sweep.tgz "$OUT/sweep.tgz"
    echo "== sweep done ($((SECONDS - start)) s)" ;;
esac
