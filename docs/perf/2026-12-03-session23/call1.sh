#!/usr/bin/env bash
# Session 23, call 1 (device): where b32_mha_4k's 494 µs go (SDPA 477, floor 469), on main's kernel
# (051882e: 49c + TileRow). No kernel change yet.
#   1. Per-tile traces of the no-share streaming rows (trace build, eager, the 5th call traced).
#   2. ncu (--clock-control none) of chunktree's kernel and of torch SDPA's on the two no-share
#      shapes P4 misses most on: duration, DRAM read rate, stalls (bench/profile.sh's metrics).
#   3. The pool's locality: b32_mha_4k at chunk 32 / 64 / 128 ((chunk, kv head) blocks of 8 / 16 /
#      32 KiB), graph replays, cold L2.
# Results packed in OUT/call1.tgz.
set -u
o=/tmp/call1; mkdir -p $o
nvidia-smi -q -d CLOCK | grep -A3 "Clocks$" > "$o/clocks.txt"; { nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
trace() {  # trace NAME BENCH_FLAGS...
  local name=$1; shift
  CHUNKTREE_TILE_TRACE=$o/trace_$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 60 .device/trace/chunktree bench --repeats 5 "$@" > "$o/trace_$name.log" 2>&1
  python3 bench/tile_trace.py "$o/trace_$name.csv" > "$o/trace_$name.txt" 2>&1; echo "== trace $name"; cat "$o/trace_$name.txt"
}
trace b32_mha_4k --batch 32 --heads 32 --kv-heads 32 --suffix 4096
trace b64_gqa8_4k --batch 64 --heads 32 --kv-heads 8 --suffix 4096
trace b32_mha_1k --batch 32 --heads 32 --kv-heads 32 --suffix 1024
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_read.sum.per_second,dram__throughput.avg.pct_of_peak_sustained_elapsed
metrics+=,lts__t_sector_hit_rate.pct,lts__t_sectors_srcunit_tex_op_read.sum,sm__warps_active.avg.pct_of_peak_sustained_active
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
ours() {  # ours NAME BENCH_FLAGS...
  local name=$1; shift
  timeout 60 ncu --clock-control none --metrics "$metrics" -k regex:mma_sync_states --launch-skip 3 --launch-count 1 \
    .device/cur/chunktree bench --repeats 5 "$@" > "$o/ncu_$name.txt" 2>&1; echo "ncu $name rc $?"
}
sdpa() {  # sdpa NAME BATCH HEADS KV_HEADS LEN
  local name=$1; shift
  timeout 90 ncu --clock-control none --metrics "$metrics" -k 'regex:(?i)(flash|fmha|attn|attention|sdpa)' --launch-skip 4 --launch-count 2 \
    python3 bench/sdpa_once.py "$@" > "$o/ncu_sdpa_$name.txt" 2>&1; echo "ncu sdpa $name rc $?"
}
ours b32_mha_4k --batch 32 --heads 32 --kv-heads 32 --suffix 4096
sdpa b32_mha_4k 32 32 32 4096
ours b512_gqa8x1_1k --batch 512 --heads 8 --kv-heads 1 --suffix 1024
sdpa b512_gqa8x1_1k 512 8 1 1024
for f in $o/ncu_*.txt; do echo "== $(basename $f)"; grep -E "^  [a-z_]+.*Context|duration|dram__|lts__|warps_active|stalled" "$f" | awk '{print $1, $(NF-1), $NF}' | grep -v " 0$" ; done
for c in 32 64 128; do
  timeout 60 .device/cur/chunktree bench --batch 32 --heads 32 --kv-heads 32 --suffix 4096 --chunk $c --csv $o/chunk$c.csv > $o/chunk$c.txt 2>&1
  echo "chunk $c rc $?"; cut -d, -f3,11,12,13 $o/chunk$c.csv
done
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/call1.tgz" -C /tmp call1
