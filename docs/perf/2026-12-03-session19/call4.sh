#!/usr/bin/env bash
# Session 19, call 4: experiment 45 alone (the wgmma kernel at the top stream priority; branch
# exp45b-priority-on-main, main a774eaa + the launch change), stripped into .device/s19c/chunktree_exp45,
# against .device/s18/chunktree_A (a15b201: main's kernels and cost model), timed as graphs replay.
set -u
x=.device/s19c; base=.device/s18/chunktree_A
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 300 bench/compare.sh $OUT/r/ab45 A=$base exp45=$x/chunktree_exp45 -- gqa-llama3 hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare45.log 2>&1; echo "compare45 rc $?"
for cli in $base $x/chunktree_exp45; do
  for split in 0 512; do
    echo "== $(basename $cli) split $split"
    timeout 30 $cli bench --repeats 20 --batch 64 --heads 32 --kv-heads 8 --prefix 2048 --suffix 512 --dim 128 --chunk 64 --split $split 2>&1 | grep -E "^custom"
    timeout 30 $cli bench --repeats 20 --batch 512 --heads 8 --kv-heads 1 --prefix 1024 --suffix 512 --dim 128 --chunk 64 --split $split 2>&1 | grep -E "^custom"
  done
done | tee $OUT/r/splits.txt
tar -C $OUT -czf $OUT/call4.tgz r && rm -rf $OUT/r; date -u
