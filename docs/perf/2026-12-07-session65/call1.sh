#!/usr/bin/env bash
# Session 65's call for the next session, for whatever card comes. Carry [".device/s65f", ".carry"].
#   On an H200: the committed run owed since session 44 (main 22263c8, `.device/s65f`), with the two
#     full seed grids, then its GPU unit tests in the time left.
#   On an H100: 22263c8's GPU unit tests only (session 65's argument checks, host code, on a GPU), to
#     keep the session's device time for an H200.
start=$SECONDS
call_s=${CALL_S:-570}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
unit_tests() {  # $1: seconds allowed
  x=/tmp/x65f && rm -rf $x && mkdir -p $x && xz -dc .device/s65f/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
  timeout "$1" $x/chunktree_gpu_tests > "$OUT/gpu_unit_tests.txt" 2>&1
  echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED)|tests ran" "$OUT/gpu_unit_tests.txt" | tail -8
}
case "$card" in
  *H200*)
    bash bench/committed_run.sh .device/s65f "$OUT/run" 400 --full-grids
    echo "== committed run done ($((SECONDS - start)) s)"
    left=$((call_s - (SECONDS - start)))
    [ $left -gt 60 ] && unit_tests $((left - 10)) ;;
  *)
    unit_tests 200 ;;
esac
