#!/usr/bin/env bash
# Session 9, call 4: where flashinfer-cascade p32k_b256_s0 (fully shared 32K prompt, 256 rows per kv
# head, wgmma tiles and a merge) lost 3.8 % since 431f552: each kernel's duration under ncu for
# 431f552's CLI and bbdffe6's.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for v in old431 current; do
  cli=$d/old431; [ $v = current ] && cli=build/default/tools/chunktree
  $cli bench --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 0 > $OUT/bench_$v.txt 2>&1
  ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum -k regex:"states|merge" --launch-skip 6 --launch-count 6 \
    $cli bench --repeats 3 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 0 > $OUT/ncu_$v.txt 2>&1
  echo "== $v rc $?"; grep -E "chunktree  " $OUT/bench_$v.txt | head -2
  grep -E "^  [a-z_]|^  void|duration|bytes" $OUT/ncu_$v.txt | sed 's/(chunktree::[^)]*)//' | cut -c1-150 | head -30
done
date -u
