#!/usr/bin/env bash
# Session 6, call 7: which kernel of b1_gqa_512 / b4_gqa_p512_s64 got slower: ncu durations, 6230f4c against cb5b237.
set -u
d=.device/s6/ab
for b in old new; do
  for shape in "--batch 1 --heads 32 --kv-heads 8 --suffix 512" "--batch 4 --heads 32 --kv-heads 8 --prefix 512 --suffix 64"; do
    ncu --clock-control none --metrics gpu__time_duration.sum -k regex:"mma_sync|merge_rows|wgmma" --launch-skip 20 --launch-count 8 \
      $d/$b bench $shape --repeats 5 2>&1 | grep -E "mma_sync_states_kernel|merge_rows_kernel|wgmma_states_kernel|gpu__time_duration" | sed -E 's/\(anonymous namespace\):://; s/void chunktree::kernels:://' | cut -c1-60 | paste - - | awk -v b=$b -v s="$shape" '{print b, s, $1, $(NF)}' | sort | uniq -c | head -6
  done
done
