#!/usr/bin/env bash
# Session 26, call 1 (device): main at 1c3b64f (head-major pools + one append_run) against 051882e
# (the last kernel before head-major pools, where P3 was met).
#  1. bench/compare.sh 051 / main / 051 again over the fully shared presets (flashinfer-cascade,
#     gqa-llama3, hydragen-micro): is the 1-6 % slowdown of fully shared rows between the two
#     committed runs real in one call?
#  2. The item split of flashinfer-cascade p1k_b256_s0 (the one row slower than FlashInfer's cascade):
#     main's CLI at --split 0/128/256/512/1024.
#  3. ncu (--clock-control none) of the wgmma kernel on p8k_b128_s0 for both builds: DRAM bytes and
#     rate, L2 hit rate, stalls.
#  4. The whole scripts/gpu-check (full grids included) on main's binaries.
set -u
o=/tmp/call1; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/tools/chunktree; a=.device/w051/chunktree
timeout 200 bench/compare.sh $o/ab 051=$a main=$m 051B=$a -- flashinfer-cascade gqa-llama3 hydragen-micro > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
for s in 0 128 256 512 1024; do
  $m bench --batch 256 --heads 32 --kv-heads 32 --prefix 1024 --split $s --csv $o/split_$s.csv > /dev/null 2>&1
  echo "split $s: $(tail -1 $o/split_$s.csv | cut -d, -f11,16,24-)"
done
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_read.sum.per_second,lts__t_sector_hit_rate.pct
metrics+=,sm__warps_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,lts__t_sectors_srcunit_tex_op_read.sum
for b in 051 main; do
  cli=$a; [ $b = main ] && cli=$m
  timeout 90 ncu --clock-control none --metrics "$metrics" --section MemoryWorkloadAnalysis -k regex:wgmma_states --launch-skip 3 --launch-count 1 \
    $cli bench --repeats 5 --batch 128 --heads 32 --kv-heads 32 --prefix 8192 > $o/ncu_p8k_b128_$b.txt 2>&1; echo "ncu $b rc $?"
  grep -E "gpu__time_duration|dram__bytes_read|lts__t_sector_hit|stalled_(long_scoreboard|barrier|wait|math|mio|lg_throttle|short|dispatch|no_inst|membar|sleeping|tex|drain|branch|selected|not_selected|imc)|tensor_op|DRAM Through|L2 Hit|Mem Busy|Max Bandwidth" $o/ncu_p8k_b128_$b.txt | head -40
done
date -u | tee -a $o/gpu.txt
timeout 320 scripts/gpu-check --no-build --build-dir .device/main --work /tmp/gc > $o/gpu-check.txt 2>&1; echo "gpu-check rc $?"
tail -16 $o/gpu-check.txt
date -u | tee -a $o/gpu.txt
tar czf $OUT/call1.tgz -C /tmp call1
