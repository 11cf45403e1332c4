#!/usr/bin/env bash
# Session 26, call 5 (device): where the joined runs' time goes on p8k_b128_s0 (128 wgmma tiles,
# 32 kv heads). main (joined runs) against e57 (a run per chunk): ncu with instruction-level stall
# sampling of the wgmma kernel (SASS table per build), and the DRAM units' balance
# (dram__sectors_read min / avg / max over the units).
set -u
o=/tmp/call5; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
m=.device/main/tools/chunktree; e=.device/e57/tools/chunktree
metrics=gpu__time_duration.sum,dram__bytes_read.sum.per_second,dram__sectors_read.min,dram__sectors_read.avg,dram__sectors_read.max
metrics+=,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_hit_rate.pct
for b in main e57; do
  cli=$m; [ $b = e57 ] && cli=$e
  timeout 120 ncu --clock-control none --metrics "$metrics" --section WarpStateStats --section SourceCounters --import-source no \
    -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $o/rep_$b \
    $cli bench --repeats 5 --batch 128 --heads 32 --kv-heads 32 --prefix 8192 > $o/ncu_$b.log 2>&1; echo "ncu $b rc $?"
  ncu -i $o/rep_$b.ncu-rep --page details > $o/details_$b.txt 2>&1
  ncu -i $o/rep_$b.ncu-rep --page source --print-source sass --csv > $o/sass_$b.csv 2>&1; echo "sass $b rc $? $(wc -l < $o/sass_$b.csv) lines"
  grep -E "gpu__time|dram__|lts__" $o/details_$b.txt
done
date -u | tee -a $o/gpu.txt
tar czf $OUT/call5.tgz -C /tmp call5
