#!/usr/bin/env bash
# Session 22, call 3 (device). Call 2 put experiment 50's loss in session 21's patch (e50b), not in
# the TileRow mapping (e50a). Candidates: the row loop of every warp now ran 16 times (most of them
# `continue`), the own-row shuffles ran for every tile, the new parking layout. This call:
#   1. bench/compare.sh over small and spec-decode: main (ab8e51b), e50a (TileRow
#      only), e50c (c619e94 with the row loop bounded by the warp's stored rows and the own-row
#      shuffles for packed tiles only), e50d (e50c with main's parking layout for unpacked tiles).
#   2. ncu on the mma.sync kernel of small b1_gqa_512 and b8_mha_p256_s16, each build.
#   3. e50c's GPU unit tests and racecheck (odd shapes, packed kv heads, wide spans): the device
#      budget left (719 s) does not fit scripts/gpu-check as well.
# Results packed in OUT/call3.tgz.
set -u
o=/tmp/call3; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
timeout 200 bench/compare.sh "$o/ab" main=.device/main/tools/chunktree e50a=.device/e50a/tools/chunktree \
  e50c=.device/e50c/tools/chunktree e50d=.device/e50d/tools/chunktree -- small spec-decode > "$o/compare.log" 2>&1
echo "compare rc $?"; cat "$o/ab/compare.md"
m=gpu__time_duration.sum,smsp__inst_executed.sum
for s in no_instruction long_scoreboard short_scoreboard barrier wait; do m+=,smsp__average_warps_issue_stalled_${s}_per_issue_active.ratio; done
for b in main e50a e50c e50d; do
  timeout 25 ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
    .device/$b/tools/chunktree bench --repeats 5 --batch 1 --heads 32 --kv-heads 8 --suffix 512 > "$o/ncu_b1_gqa_512_$b.txt" 2>&1
  timeout 25 ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
    .device/$b/tools/chunktree bench --repeats 5 --batch 8 --heads 32 --kv-heads 32 --prefix 256 --suffix 16 > "$o/ncu_b8_mha_p256_s16_$b.txt" 2>&1
done
for f in $o/ncu_*.txt; do echo "== $(basename $f)"; grep -E "duration|inst_executed|stalled" "$f" | awk '{print $1, $NF}' | sed 's/smsp__average_warps_issue_stalled_//'; done
date -u | tee -a "$o/gpu.txt"
timeout 150 .device/e50c/tests/chunktree_gpu_tests > "$o/gpu-unit-tests.log" 2>&1; echo "unit tests rc $?"; tail -1 "$o/gpu-unit-tests.log"
grep -E "^\[  FAILED" "$o/gpu-unit-tests.log" | head
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 .device/e50c/tests/chunktree_gpu_tests \
  --gtest_filter='Cuda/BackendAttention.OddShapes/*:CudaAttention.ShortNarrowItemsPackKvHeads:CudaAttention.WideSharedSpansOnWgmmaTiles' > "$o/racecheck.log" 2>&1
echo "racecheck rc $?"; grep -E "SUMMARY|PASSED|FAILED" "$o/racecheck.log" | tail -3
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call3.tgz" -C /tmp call3
