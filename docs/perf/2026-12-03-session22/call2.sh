#!/usr/bin/env bash
# Session 22, call 2 (device). Experiment 50 lost ~1 µs on every small row and 2–4 % on spec rows
# (call 1); this call finds which half of it does: main (ab8e51b, 49c), e50 (c619e94: both),
# e50a (main + the TileRow mapping only), e50b (main + session 21's patch only).
#   1. bench/compare.sh over small and spec-decode, four builds.
#   2. ncu (--clock-control none) on the mma.sync kernel of small b1_gqa_512 and b8_mha_p256_s16
#      for each build: duration, instructions, and the top stall reasons per issue.
#   3. scripts/gpu-check (full grids, sanitizers included) on main's kernel, the kept one (49c).
# Results packed in OUT/call2.tgz.
set -u
o=/tmp/call2; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
timeout 150 bench/compare.sh "$o/ab" main=.device/main/tools/chunktree e50=.device/e50/tools/chunktree \
  e50a=.device/e50a/tools/chunktree e50b=.device/e50b/tools/chunktree -- small spec-decode > "$o/compare.log" 2>&1
echo "compare rc $?"; cat "$o/ab/compare.md"
m=gpu__time_duration.sum,smsp__inst_executed.sum
for s in no_instruction long_scoreboard short_scoreboard barrier wait membar sleeping math_pipe_throttle lg_throttle mio_throttle; do
  m+=,smsp__average_warps_issue_stalled_${s}_per_issue_active.ratio
done
for b in main e50 e50a e50b; do
  timeout 30 ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
    .device/$b/tools/chunktree bench --repeats 5 --batch 1 --heads 32 --kv-heads 8 --suffix 512 > "$o/ncu_b1_gqa_512_$b.txt" 2>&1
  timeout 30 ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
    .device/$b/tools/chunktree bench --repeats 5 --batch 8 --heads 32 --kv-heads 32 --prefix 256 --suffix 16 > "$o/ncu_b8_mha_p256_s16_$b.txt" 2>&1
done
for f in $o/ncu_*.txt; do echo "== $(basename $f)"; grep -E "duration|inst_executed|stalled" "$f" | awk '{print $1, $NF}'; done
date -u | tee -a "$o/gpu.txt"
timeout 380 scripts/gpu-check --no-build --build-dir .device/main --work /tmp/gc > "$o/gpu-check-main.txt" 2>&1
echo "gpu-check rc $?"; tail -14 "$o/gpu-check-main.txt"
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call2.tgz" -C /tmp call2
