#!/usr/bin/env bash
# Session 62's first call, for whatever card comes. The checkout this session began from held no
# `.device/` and no branch `exp107`: both were rebuilt (experiments 106 and 107 re-made from
# KERNEL_NOTES; the C++ model gives session 61's numbers on its test shapes: k 74 and 68, 552 -> 484 µs).
#   On an H200: main's GPU unit tests (70a00d3: its host tidy has not run on a GPU) and gpu-check's
#     quick grids, random trees and sanitizers with them (issue 11 asks for gpu-check green on the
#     H200); the committed run follows in a call of its own once the wheel and bundle are built.
#   On an H100: experiments 106 and 107 (exp107) against main in both orders (bench/ab_call.sh).
# Carry [".device/s62m", ".device/s62e"]. CALL_S: this script's seconds (default 540).
start=$SECONDS
call_s=${CALL_S:-540}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
case "$card" in
  *H200*) ;;
  *) CALL_S=$call_s PRESETS=${PRESETS:-"spec-decode hydragen-micro tree flashinfer-cascade gqa-llama3"} \
       exec bench/ab_call.sh r107 .device/s62e/chunktree.gz .device/s62e/chunktree_gpu_tests.xz \
       main=.device/s62m/chunktree.gz e107=.device/s62e/chunktree.gz ;;
esac
x=/tmp/x62h200 && rm -rf $x && mkdir -p $x/tools $x/tests $OUT/h200
gunzip -c .device/s62m/chunktree.gz > $x/tools/chunktree && xz -dc .device/s62m/chunktree_gpu_tests.xz > $x/tests/chunktree_gpu_tests || exit 1
chmod +x $x/tools/chunktree $x/tests/chunktree_gpu_tests
$x/tools/chunktree info | head -3
timeout 150 $x/tests/chunktree_gpu_tests > $OUT/h200/unit.txt 2>&1
echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $OUT/h200/unit.txt | tail -8
left=$((call_s - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir $x --work /tmp/gc62 --skip-full-grid \
  --only quick-grid,seq-first-quick-grid,random-trees,memcheck,racecheck,synccheck > $OUT/h200/gpu_check.txt 2>&1
echo "== gpu-check rc $? ($((SECONDS - start)) s)"; grep -A10 "gpu-check summary" $OUT/h200/gpu_check.txt
