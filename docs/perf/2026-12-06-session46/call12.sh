#!/usr/bin/env bash
# Session 46, call 12: how much of a `small` call (P5) is instruction fetch. Call 8 found a fifth of
# the wgmma kernel's warp samples waiting for instructions on a short row (no_inst), and 8 % of the
# mma.sync kernel's on np1024_ns1024. P5's rows are one short wave of mma.sync tiles and a merge.
# Nsight Compute on the CLI (main's kernels, .device/s44m), with ncu's flush before each kernel
# (--cache-control all: code and data cold, as the bench's flush leaves them) and a warp sample
# every 32 cycles (--warp-sampling-interval 0): the mma.sync kernel and the merge of small
# b1_gqa_512 (split 64: 8 private items) and b8_gqa_p1k_s0 (16 shared items of 8 rows).
# Carry [".device/s44m"]. Prediction: no_inst >= 20 % of each kernel's samples, at the first
# instructions of its code regions; long_sb (the descriptor and Q chains) the next largest.
set -u
start=$SECONDS
cli=.device/s44m/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/c12
profile() {  # NAME KERNEL SHAPE...
  local name=$1 kernel=$2; shift 2
  timeout 90 ncu --clock-control none --cache-control all --warp-sampling-interval 0 --metrics gpu__time_duration.sum \
    --section WarpStateStats --section SourceCounters --import-source no -k "regex:$kernel" --launch-skip 3 --launch-count 1 \
    -o /tmp/rep_$name $cli bench --repeats 5 "$@" > $OUT/c12/ncu_$name.log 2>&1
  echo "== $name rc $? ($((SECONDS - start)) s)"
  ncu -i /tmp/rep_$name.ncu-rep --page details > $OUT/c12/details_$name.txt 2>&1
  grep -E "gpu__time_duration|Grid Size|Block Size" $OUT/c12/details_$name.txt
  ncu -i /tmp/rep_$name.ncu-rep --page source --print-source sass --csv > $OUT/c12/sass_$name.csv 2>&1
  python3 docs/perf/2026-12-06-session46/sass_runs.py $OUT/c12/sass_$name.csv | head -1
}
b1="--batch 1 --heads 32 --kv-heads 8 --suffix 512"
b8="--batch 8 --heads 32 --kv-heads 8 --prefix 1024"
profile b1_mma mma_sync_states $b1
profile b1_merge merge_rows $b1
profile b8_mma mma_sync_states $b8
profile b8_merge merge_rows $b8
gzip $OUT/c12/sass_*.csv
(cd $OUT && tar -czf c12.tgz c12 && rm -rf c12)
date -u
