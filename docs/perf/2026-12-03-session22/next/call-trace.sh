#!/usr/bin/env bash
# Next session (device): per-tile traces of the no-share streaming rows on main's kernel (P4's
# tail), eager calls, the 5th traced. Binary: .device/trace/chunktree (CHUNKTREE_TILE_TRACE=ON).
set -u
o=/tmp/trace; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$o/gpu.txt"
run() {  # run NAME BENCH_FLAGS...
  local name=$1; shift
  CHUNKTREE_TILE_TRACE=$o/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 .device/trace/chunktree bench --repeats 5 "$@" > "$o/$name.log" 2>&1
  python3 bench/tile_trace.py "$o/$name.csv" > "$o/$name.txt" 2>&1; echo "== $name"; cat "$o/$name.txt"
}
run b32_mha_4k --batch 32 --heads 32 --kv-heads 32 --suffix 4096
run b64_gqa8_4k --batch 64 --heads 32 --kv-heads 8 --suffix 4096
date -u | tee -a "$o/gpu.txt"
tar czf "$OUT/trace.tgz" -C /tmp trace
