#!/usr/bin/env bash
# Session 64's first call, for whatever card comes. Carry [".device/s64f", ".carry"].
#   On an H200: the committed run owed since session 44 (main a983856, `.device/s64f`), with the two
#     full seed grids, then a983856's GPU unit tests in the time left.
#   On an H100: a983856's GPU unit tests only (the host tidy 82f058e on a GPU), to keep the session's
#     device time for an H200.
# BUILD names another build's directory (session 65's call runs this with BUILD=.device/s65f).
start=$SECONDS
build=${BUILD:-.device/s64f}
call_s=${CALL_S:-570}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
unit_tests() {  # $1: seconds allowed
  x=/tmp/x64f && rm -rf $x && mkdir -p $x && xz -dc "$build/chunktree_gpu_tests.xz" > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
  timeout "$1" $x/chunktree_gpu_tests > "$OUT/gpu_unit_tests.txt" 2>&1
  echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED)|tests ran" "$OUT/gpu_unit_tests.txt" | tail -8
}
case "$card" in
  *H200*)
    bash bench/committed_run.sh "$build" "$OUT/run" 400 --full-grids
    echo "== committed run done ($((SECONDS - start)) s)"
    left=$((call_s - (SECONDS - start)))
    [ $left -gt 60 ] && unit_tests $((left - 10)) ;;
  *)
    unit_tests 200 ;;
esac
