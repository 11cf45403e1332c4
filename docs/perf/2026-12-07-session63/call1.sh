#!/usr/bin/env bash
# Session 63's first call, for whatever card comes. Carry [".device/s63f", ".carry", ".device/probe"].
#   On an H200: the committed run owed since session 44, of main d2775a7 (`.device/s63f`: its CLI, GPU
#     tests and wheel), then its GPU unit tests in the time left; gpu-check's sanitizers follow in a
#     call of their own on the same machine.
#   On an H100: the cascade row's partition (session 62's call_cascade_partition.sh, with
#     `.device/probe` = d2775a7 + probe_wgmma_sms.patch built plain and traced), then d2775a7's GPU
#     unit tests (its host tidy has not run on a GPU).
start=$SECONDS
call_s=${CALL_S:-570}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
unit_tests() {  # $1: output file; runs d2775a7's GPU unit tests in the time left
  local left=$((call_s - (SECONDS - start)))
  [ $left -gt 60 ] || { echo "no time left for the unit tests ($left s)"; return; }
  local x=/tmp/x63f && rm -rf $x && mkdir -p $x && xz -dc .device/s63f/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
  timeout $((left - 10)) $x/chunktree_gpu_tests > "$1" 2>&1
  echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" "$1" | tail -8
}
case "$card" in
  *H200*)
    bash bench/committed_run.sh .device/s63f "$OUT/run" 400 --full-grids
    echo "== committed run done ($((SECONDS - start)) s)"
    unit_tests "$OUT/run/gpu_unit_tests.txt" ;;
  *)
    timeout 330 bash docs/perf/2026-12-07-session62/call_cascade_partition.sh
    echo "== partition probe rc $? ($((SECONDS - start)) s)"
    unit_tests "$OUT/unit_d2775a7.txt" ;;
esac
