#!/usr/bin/env bash
# Session 9, call 7: is the fully shared rows' slowdown inside the flashinfer-cascade preset the
# card's clock? The SM clock, power and temperature sampled every 50 ms while each CLI runs the
# preset (431f552 first, then ca28771), with each case's start printed by the CLI's own output.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader; date -u
for v in old431 current; do
  cli=$d/old431; [ $v = current ] && cli=build/default/tools/chunktree
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 50 > $OUT/clocks_$v.csv &
  smi=$!
  $cli bench --preset flashinfer-cascade 2>&1 | while read -r line; do echo "$(date -u +%H:%M:%S.%N | cut -c1-12) $line"; done > $OUT/bench_$v.txt
  kill $smi
  grep -E "p32k_b32_s256 .*noshare|p32k_b128_s0 " $OUT/bench_$v.txt | cut -c1-110
done
date -u
