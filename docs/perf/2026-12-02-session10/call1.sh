#!/usr/bin/env bash
# Session 10, call 1: (a) the device host: its CPU, NUMA and page settings, and make_plan at
# B = 1024 with the process pinned to each core in turn and unpinned (is the 32 / 51 us split of
# earlier calls a per-core or a per-process effect?); (b) the flashinfer-cascade preset with this
# CLI (now idling 250 ms before each row's repeats) and with 431f552's, the card's clocks, power
# and throttle reasons sampled every 50 ms.
set -u
d=.device/s10
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader; date -u
lscpu > $OUT/lscpu.txt; grep -E "Model name|^CPU\(s\)|Thread|Socket|NUMA|L2|L3|MHz" $OUT/lscpu.txt
cat /sys/kernel/mm/transparent_hugepage/enabled; command -v numactl && numactl -H | head -4
for c in $(seq 0 $(($(nproc) - 1))); do
  echo "core $c $(taskset -c $c $cli host-bench --case b1024_p2k | grep -E 'make_plan ' | tr -s ' ')"
done > $OUT/pinned.txt 2>&1
for i in 1 2 3 4; do echo "unpinned $(taskset -c 0-$(($(nproc) - 1)) $cli host-bench --case b1024_p2k | grep -E 'make_plan ' | tr -s ' ')"; done >> $OUT/pinned.txt 2>&1
cat $OUT/pinned.txt
for v in current old431; do
  c=$cli; [ $v = old431 ] && c=$d/old431
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 50 > $OUT/clocks_$v.csv &
  smi=$!
  $c bench --preset flashinfer-cascade 2>&1 | while read -r line; do echo "$(date -u +%H:%M:%S.%N | cut -c1-12) $line"; done > $OUT/bench_$v.txt
  kill $smi
  echo "$v: power cap samples $(grep -c '0x0000000000000004' $OUT/clocks_$v.csv) of $(wc -l < $OUT/clocks_$v.csv), max $(cut -d, -f4 $OUT/clocks_$v.csv | sort -n | tail -1)"
  grep -E "p32k_b128_s0 |p8k_b256_s0 |p32k_b256_s0 " $OUT/bench_$v.txt | grep -v noshare | cut -c1-110
done
date -u
