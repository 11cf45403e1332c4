#!/usr/bin/env bash
# Experiment 108 (branch exp108, 384ec33) against main, any Hopper card (~5 min warm; carry
# [".device/e108", ".device/s67f", ".device/probe67"]). KERNEL_NOTES session 67 has its prediction.
#   1. The four `small` rows traced by main's trace build (`.device/probe67`) and exp108's
#      (`.device/e108/probe_trace.gz`), main again last (~40 s): the end phase's "combined -> stored".
#   2. bench/ab_call.sh: exp108's GPU unit tests, then the `small` and chunkattn-t3 presets timed by
#      main's CLI (`.device/s67f`) and exp108's, in both orders, then exp108's quick grids, random
#      trees and sanitizers in the time left.
# Everything comes back as OUT/tr.tgz and OUT/e108.tgz. CALL_S: the call's seconds (default 560).
# MAIN: main's build directory (default .device/s67f).
start=$SECONDS
call_s=${CALL_S:-560}
here=$(dirname "$0")
x=/tmp/x108 && rm -rf $x && mkdir -p $x
gunzip -c .device/probe67/probe_trace.gz > $x/main && gunzip -c .device/e108/probe_trace.gz > $x/e108 && chmod +x $x/main $x/e108 || exit 1
timeout 120 bench/trace_rows.sh "$OUT" "$here/../2026-12-07-session66/small_rows.txt" "main=$x/main" "e108=$x/e108" "main2=$x/main"
echo "== traces done ($((SECONDS - start)) s)"
PRESETS="small chunkattn-t3" CALL_S=$((call_s - (SECONDS - start))) exec bench/ab_call.sh e108 .device/e108/chunktree.gz \
  .device/e108/chunktree_gpu_tests.xz main=${MAIN:-.device/s67f}/chunktree.gz e108=.device/e108/chunktree.gz
