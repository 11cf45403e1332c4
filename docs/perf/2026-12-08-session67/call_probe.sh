#!/usr/bin/env bash
# Session 67's probe call, any Hopper card (~2-4 min warm; carry [".device/s67f", ".device/probe67",
# ".device/probe", ".device/probe66"]), in order of what it tells per second:
#   1. the whole call of eight rows on one clock (call_timeline.sh, ~40 s; KERNEL_NOTES session 67's
#      six predictions);
#   2. the read reference of chunkattn-t3, no-share and small on main's CLI (`.device/s67f`:
#      `bench --read-reference`, ~15 s; its first run on a GPU; the prediction in KERNEL_NOTES
#      session 67);
#   3. main's GPU unit tests (`.device/s67f`; the trace-only and bench changes of session 67);
#   4. session 66's trace instrument A/B and ncu call (its two predictions), as time allows.
# MAIN: main's build directory (default .device/s67f; session 68's call1.sh passes .device/s68f).
# CALL_S: the call's seconds (default 560). Everything comes back packed in OUT/probe.tgz (a call
# returns at most 8 files).
start=$SECONDS
call_s=${CALL_S:-560}
here=$(dirname "$0")
main=${MAIN:-.device/s67f}
left() { echo $((call_s - (SECONDS - start))); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
bash "$here/call_timeline.sh"
echo "== timeline done ($((SECONDS - start)) s)"
x=/tmp/x67p && rm -rf $x && mkdir -p $x && gunzip -c $main/chunktree.gz > $x/chunktree && chmod +x $x/chunktree || exit 1
xz -dc $main/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests || exit 1
timeout 60 $x/chunktree bench --preset chunkattn-t3 --preset no-share --preset small --read-reference --csv "$OUT/reads.csv" > "$OUT/reads.txt" 2>&1
echo "== read reference rc $? ($((SECONDS - start)) s)"; head -4 "$OUT/reads.txt"; grep hbm-read "$OUT/reads.txt"
timeout $(( $(left) > 160 ? 150 : $(left) - 10 )) $x/chunktree_gpu_tests > "$OUT/gpu_unit_tests.txt" 2>&1
echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED)|tests ran" "$OUT/gpu_unit_tests.txt" | tail -8
[ "$(left)" -gt 60 ] && (OUT=$OUT/ab bash "$here/../2026-12-07-session66/call_trace_ab.sh"; echo "== trace A/B done ($((SECONDS - start)) s)")
[ "$(left)" -gt 120 ] && (BUILD=$main bash "$here/../2026-12-07-session66/call_ncu_small.sh"; echo "== ncu done ($((SECONDS - start)) s)")
tar -C "$OUT" -czf /tmp/probe.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/probe.tgz "$OUT/" && ls -la "$OUT"
exit 0
