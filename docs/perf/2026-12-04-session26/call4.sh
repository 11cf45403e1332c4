#!/usr/bin/env bash
# Session 26, call 4 (device): experiment 57, a diagnostic: main with the prefix cache's chunks
# never joined into runs (next/exp57-unjoined-pool-runs-on-f9596e5.patch: every chunk piece its
# own run, as on 051882e, over main's head-major pools). Are the fully shared rows' 3-5 % the runs'
# or the layout's?
#  1. bench/compare.sh main / e57 / main again over flashinfer-cascade, gqa-llama3, no-share.
#  2. ncu (--clock-control none) of the wgmma kernel on p8k_b128_s0 with e57.
set -u
o=/tmp/call4; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/tools/chunktree; e=.device/e57/tools/chunktree
timeout 200 bench/compare.sh $o/ab main=$m e57=$e mainB=$m -- flashinfer-cascade gqa-llama3 no-share > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_read.sum.per_second,lts__t_sector_hit_rate.pct
metrics+=,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
metrics+=,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio
for b in main e57; do
  cli=$m; [ $b = e57 ] && cli=$e
  timeout 60 ncu --clock-control none --metrics "$metrics" -k regex:wgmma_states --launch-skip 3 --launch-count 1 \
    $cli bench --repeats 5 --batch 128 --heads 32 --kv-heads 32 --prefix 8192 > $o/ncu_p8k_b128_$b.txt 2>&1; echo "ncu $b rc $?"
  grep -E "gpu__time|dram__|lts__|long_scoreboard|tensor_op" $o/ncu_p8k_b128_$b.txt
done
date -u | tee -a $o/gpu.txt
tar czf $OUT/call4.tgz -C /tmp call4
