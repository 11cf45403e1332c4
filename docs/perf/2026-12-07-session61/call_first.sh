#!/usr/bin/env bash
# The next session's first call (written in session 61), for whatever card comes. On an H200: the
# committed run of main (`.device/s60m`: exp104m 3d978d2's CLI, GPU tests and wheel, the same source
# as main 8121633), the H200's first since session 44's and the first of the partition, claims and
# the chained launch there; then gpu-check's random trees and sanitizers on that H200 while time is
# left (issue 11 asks for gpu-check green on the H200; the run itself does the grids and GPU pytest). On an H100: experiments
# 106 and 107's A/B (`call_e107.sh`). Carry [".device/s60m", ".carry", ".device/s61f"].
# CALL_S: this script's seconds (default 540).
start=$SECONDS
call_s=${CALL_S:-540}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in
  *H200*) ;;
  *) CALL_S=$call_s exec bash docs/perf/2026-12-07-session61/call_e107.sh ;;
esac
bash bench/committed_run.sh .device/s60m "$OUT/run" 400 --full-grids
x=/tmp/x61h200 && rm -rf $x && mkdir -p $x/tools $x/tests
gunzip -c .device/s60m/chunktree.gz > $x/tools/chunktree && xz -dc .device/s60m/chunktree_gpu_tests.xz > $x/tests/chunktree_gpu_tests || exit 1
chmod +x $x/tools/chunktree $x/tests/chunktree_gpu_tests
left=$((call_s - (SECONDS - start)))
[ $left -gt 60 ] || { echo "no time left for gpu-check ($left s)"; exit 0; }
timeout $left scripts/gpu-check --no-build --build-dir $x --work /tmp/gc61 --skip-full-grid \
  --only random-trees,memcheck,racecheck,synccheck > "$OUT/gpu_check_h200.txt" 2>&1
echo "== gpu-check rc $?"; grep -A10 "gpu-check summary" "$OUT/gpu_check_h200.txt"
