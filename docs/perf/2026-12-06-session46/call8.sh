#!/usr/bin/env bash
# Session 46, call 8: where a short fully shared call's time goes after its tiles' stages. The
# replay traces of call 7 put 9-10 us of an 18-21 us wgmma kernel (trace build) between a tile's
# combined sums and the end of its state stores, in lockstep on every CTA (eager traces: ~3 us);
# the CLI's merge of the same row takes 7.1-7.4 us (ncu, call 5) for 4 states a row. Nsight Compute
# on the CLI (main's kernels, .device/s44m) for hydragen b512_p1k_s0 (wgmma tiles, 4 parts) and
# chunkattn np1024_ns1024 (mma.sync tiles): the states kernel and the merge, each with the L2 left
# as the bench's flush leaves it (--cache-control none: every line dirty) and flushed clean by
# ncu (--cache-control all); DRAM and L2 bytes both ways, warp states, and SASS-level samples of
# the states kernel. Carry [".device/s44m"].
# Prediction: the states kernel's DRAM writes under --cache-control none are about its states'
# bytes (b512_p1k_s0: 8.4 MB) or more (dirty lines evicted), and near zero under "all"; the
# consumers' samples at the state stores and EXIT (lg_throttle, drain) >= 20 % of theirs; the
# merge kernel's time is L2 latency (long scoreboard), its DRAM reads < 2 MB.
set -u
start=$SECONDS
cli=.device/s44m/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_op_write.sum,lts__t_sectors_op_read.sum
metrics+=,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
shape_b512="--batch 512 --heads 8 --kv-heads 1 --prefix 1024"
shape_np1k="--batch 32 --heads 32 --kv-heads 32 --prefix 1024"
profile() {  # NAME KERNEL CACHE SOURCE(yes|no) SHAPE...
  local name=$1 kernel=$2 cache=$3 source=$4; shift 4
  local sections="--section WarpStateStats --section SpeedOfLight"
  [ $source = yes ] && sections+=" --section SourceCounters --section MemoryWorkloadAnalysis_Tables"
  timeout 120 ncu --clock-control none --cache-control $cache --metrics "$metrics" $sections --import-source no \
    -k "regex:$kernel" --launch-skip 3 --launch-count 1 -o /tmp/rep_$name $cli bench --repeats 5 "$@" > $OUT/ncu_$name.log 2>&1
  echo "== $name rc $? ($((SECONDS - start)) s)"
  ncu -i /tmp/rep_$name.ncu-rep --page details > $OUT/details_$name.txt 2>&1
  grep -E "gpu__time_duration|dram__bytes|lts__t_sectors_op|lts__t_sector_hit" $OUT/details_$name.txt
  [ $source = yes ] && ncu -i /tmp/rep_$name.ncu-rep --page source --print-source sass --csv > $OUT/sass_$name.csv 2>&1
  return 0
}
profile b512_wgmma_dirty wgmma_states none yes $shape_b512
profile b512_wgmma_clean wgmma_states all no $shape_b512
profile b512_merge_dirty merge_rows none no $shape_b512
profile np1k_mma_dirty mma_sync_states none yes $shape_np1k
profile np1k_mma_clean mma_sync_states all no $shape_np1k
profile np1k_merge_dirty merge_rows none no $shape_np1k
gzip $OUT/sass_*.csv 2>/dev/null
(cd $OUT && tar -czf ncu.tgz details_* ncu_*.log sass_*.csv.gz && rm -f details_* ncu_*.log sass_*.csv.gz)
date -u
