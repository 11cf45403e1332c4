#!/usr/bin/env bash
# Session 22, call 1 (device): experiment 50 (c619e94: packed tiles' end phase without block
# barriers, one TileRow mapping) against main's CLI (ab8e51b, 49c's kernel): bench/compare.sh over
# small, spec-decode, flashinfer-cascade, chunkattn-t3, no-share and bench/shapes.txt (graph
# replays, cold L2, chunktree's rows only); then 50's GPU unit tests and racecheck (the packed end
# phase now orders its warps with __syncwarp alone). Results packed in OUT/call1.tgz.
# Binaries built here and carried in .device/{main,e50}/{tools,tests}.
set -u
o=/tmp/call1; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
timeout 300 bench/compare.sh "$o/ab" main=.device/main/tools/chunktree e50=.device/e50/tools/chunktree \
  -- small spec-decode flashinfer-cascade chunkattn-t3 no-share > "$o/compare.log" 2>&1
echo "compare rc $?"; cat "$o/ab/compare.md"
date -u | tee -a "$o/gpu.txt"
timeout 150 .device/e50/tests/chunktree_gpu_tests > "$o/gpu-unit-tests.log" 2>&1; echo "unit tests rc $?"; tail -3 "$o/gpu-unit-tests.log"
grep -E "^\[  FAILED" "$o/gpu-unit-tests.log" | head
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 .device/e50/tests/chunktree_gpu_tests \
  --gtest_filter='Cuda/BackendAttention.OddShapes/*:CudaAttention.ShortNarrowItemsPackKvHeads:CudaAttention.WideSharedSpansOnWgmmaTiles' > "$o/racecheck.log" 2>&1
echo "racecheck rc $?"; grep -E "SUMMARY|PASSED|FAILED" "$o/racecheck.log" | tail -4
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call1.tgz" -C /tmp call1
