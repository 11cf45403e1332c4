#!/usr/bin/env bash
# Session 26, call 3 (device): experiment 56 (each kv head's pool region followed by two spare
# positions) against main (1c3b64f).
#  1. bench/compare.sh main / e56 / main again over flashinfer-cascade, gqa-llama3, no-share (and
#     bench/shapes.txt).
#  2. ncu (--clock-control none) of the wgmma kernel on p8k_b128_s0 with e56.
#  3. scripts/gpu-check --skip-full-grid on e56's binaries.
set -u
o=/tmp/call3; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/tools/chunktree; e=.device/e56/tools/chunktree
timeout 200 bench/compare.sh $o/ab main=$m e56=$e mainB=$m -- flashinfer-cascade gqa-llama3 no-share > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_read.sum.per_second,lts__t_sector_hit_rate.pct
metrics+=,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
metrics+=,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio
timeout 60 ncu --clock-control none --metrics "$metrics" -k regex:wgmma_states --launch-skip 3 --launch-count 1 \
  $e bench --repeats 5 --batch 128 --heads 32 --kv-heads 32 --prefix 8192 > $o/ncu_p8k_b128_e56.txt 2>&1; echo "ncu rc $?"
grep -E "gpu__time|dram__|lts__|long_scoreboard|tensor_op" $o/ncu_p8k_b128_e56.txt
date -u | tee -a $o/gpu.txt
timeout 260 scripts/gpu-check --no-build --skip-full-grid --build-dir .device/e56 --work /tmp/gc > $o/gpu-check.txt 2>&1; echo "gpu-check rc $?"
tail -12 $o/gpu-check.txt
date -u | tee -a $o/gpu.txt
tar czf $OUT/call3.tgz -C /tmp call3
