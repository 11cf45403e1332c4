#!/usr/bin/env bash
# Session 21, call 1 (device): experiments 48 and 49 against main's CLI, then experiment 49 checked.
#   1. bench/compare.sh: main (fa29da1) / e48 / e49 over small, no-share, chunkattn-t3, spec-decode,
#      flashinfer-cascade and bench/shapes.txt (graph replays, cold L2, chunktree's rows only).
#   2. ncu on small b1_gqa_512's mma.sync kernel for each build: duration, and the stall on
#      instruction fetch (is code size what the latency-bound rows pay?).
#   3. scripts/gpu-check on e49 without the full grids (unit tests, quick grids, random and large
#      trees, memcheck, racecheck and its probe, synccheck), cut at 280 s.
# Binaries built here and carried in .device/{main,e48,e49}/{tools,tests}.
set -u
o=$OUT
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$o/gpu.txt"
date -u | tee -a "$o/gpu.txt"
bench/compare.sh "$o/ab" main=.device/main/tools/chunktree e48=.device/e48/tools/chunktree e49=.device/e49/tools/chunktree \
  -- small no-share chunkattn-t3 spec-decode flashinfer-cascade > "$o/compare.log" 2>&1
cat "$o/ab/compare.md" | head -80
m=gpu__time_duration.sum,smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio
m+=,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__inst_executed.sum
for b in main e48 e49; do
  ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
    .device/$b/tools/chunktree bench --repeats 5 --batch 1 --heads 32 --kv-heads 8 --suffix 512 > "$o/ncu_b1_gqa_512_$b.txt" 2>&1
  echo "== ncu $b"; grep -E "duration|no_instruction|barrier|inst_executed" "$o/ncu_b1_gqa_512_$b.txt"
done
date -u
timeout 280 scripts/gpu-check --no-build --build-dir .device/e49 --skip-full-grid --work /tmp/gc > "$o/gpu-check-e49.txt" 2>&1
echo "gpu-check rc $?"; grep -E "^== |PASS|FAIL" "$o/gpu-check-e49.txt" | tail -20
cp /tmp/gc/gpu-unit-tests.log "$o/" 2>/dev/null; grep -E "FAILED|PASSED" /tmp/gc/gpu-unit-tests.log | tail -5
date -u
