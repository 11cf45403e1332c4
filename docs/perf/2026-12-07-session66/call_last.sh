#!/usr/bin/env bash
# Session 66's last call (~500 s of device time left: too little for a committed run). On an H200:
# 9f4854f's GPU unit tests, then gpu-check's quick grids, random trees and sanitizers (call2's) in the
# time left (CALL_S, default 330). On any other card: call1.sh's H100 branch (the trace A/B, then
# call_ncu_small.sh).
# Carry [".device/s65f", ".carry", ".device/probe", ".device/probe66"].
here=$(dirname "$0")
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) ;;
  *) exec bash "$here/call1.sh" ;;
esac
start=$SECONDS
x=/tmp/x66u && rm -rf $x && mkdir -p $x && xz -dc .device/s65f/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
timeout 150 $x/chunktree_gpu_tests > "$OUT/gpu_unit_tests.txt" 2>&1
echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED)|tests ran" "$OUT/gpu_unit_tests.txt" | tail -8
CALL_S=$((${CALL_S:-330} - (SECONDS - start))) exec bash "$here/call2_sanitizers.sh"
