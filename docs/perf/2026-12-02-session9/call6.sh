#!/usr/bin/env bash
# Session 9, call 6: the fully shared flashinfer-cascade rows (p32k_b128_s0, p8k_b256_s0,
# p32k_b256_s0) that call 5 found slower than 431f552 inside the preset: each shape alone with both
# CLIs, alternating, then the preset with 431f552's CLI first.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for shape in "128 32768" "256 8192" "256 32768"; do
  set -- $shape
  for v in old431 current old431b currentb; do
    cli=$d/old431; case $v in current*) cli=build/default/tools/chunktree;; esac
    echo "b$1 p$2 $v $($cli bench --batch $1 --heads 32 --kv-heads 32 --dim 128 --prefix $2 --suffix 0 2>&1 | grep 'chunktree  ' | head -1 | cut -c40-100)"
  done
done | tee $OUT/alone.txt
timeout 150 bench/compare.sh $OUT/abfc old431=$d/old431 current=build/default/tools/chunktree -- flashinfer-cascade > /dev/null 2>&1
grep -E "_s0 " $OUT/abfc/compare.md
date -u
