#!/usr/bin/env bash
# Session 21, call 2 (device): experiment 49b against main's CLI (bench/compare.sh over small,
# no-share, chunkattn-t3, spec-decode, flashinfer-cascade and bench/shapes.txt), ncu on small
# b1_gqa_512's mma.sync kernel, and 49b's GPU unit tests. Results packed in OUT/call2.tgz (the
# device returns at most 8 files). Binaries in .device/{main,e49c}.
set -u
o=/tmp/call2; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
bench/compare.sh "$o/ab" main=.device/main/tools/chunktree e49b=.device/e49c/tools/chunktree \
  -- small no-share chunkattn-t3 spec-decode flashinfer-cascade > "$o/compare.log" 2>&1
cat "$o/ab/compare.md"
m=gpu__time_duration.sum,smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio
ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
  .device/e49c/tools/chunktree bench --repeats 5 --batch 1 --heads 32 --kv-heads 8 --suffix 512 > "$o/ncu_b1_gqa_512_e49b.txt" 2>&1
grep -E "duration|no_instruction" "$o/ncu_b1_gqa_512_e49b.txt"
.device/e49c/tests/chunktree_gpu_tests > "$o/gpu-unit-tests.log" 2>&1; echo "unit tests rc $?"; tail -3 "$o/gpu-unit-tests.log"
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call2.tgz" -C /tmp call2
