#!/usr/bin/env bash
# Session 9, call 2: why experiment 23 is slower. bench/compare.sh of exp23 (50c56d8), its variants
# (nomap: the map never made, so every stage by cp.async with the new tile layout and registers;
# nopromo: the map without L2 promotion; evictnormal: the TMA's L2 hint normal) and the base
# (1a762b7), exp23 again last; then ncu of exp23 and base on no-share b32_mha_4k.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 300 bench/compare.sh $OUT/ab23v exp23=$d/exp23/chunktree nomap=$d/nomap/chunktree nopromo=$d/nopromo/chunktree \
  evictnormal=$d/evictnormal/chunktree base=$d/base/chunktree exp23b=$d/exp23/chunktree -- no-share private chunkattn-t3
cat $OUT/ab23v/compare.md
date -u
m=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_read.sum.per_second,lts__t_sector_hit_rate.pct,lts__t_sectors_srcunit_tex_op_read.sum
m+=,sm__warps_active.avg.pct_of_peak_sustained_active,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
for v in exp23 base nomap; do
  ncu --clock-control none --metrics "$m" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 $d/$v/chunktree bench --repeats 5 \
    --batch 32 --heads 32 --kv-heads 32 --suffix 4096 > $OUT/ncu_$v.txt 2>&1
  echo "== $v rc $?"; grep -E "duration|dram__bytes|hit_rate|sectors_srcunit|warps_active" $OUT/ncu_$v.txt
done
date -u
