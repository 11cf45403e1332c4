#!/usr/bin/env bash
# Session 17, call 2: A/B of main (81ffba4, experiment 36 under 34's ping-pong) against
# experiment 37 (the tensor maps prefetched at the kernel's start) and 38 (the wgmma grid
# persistent whenever it runs alone); the item split swept on hydragen b4096_p8k_s0 and two
# spec-decode rows (the cost model's wgmma step was fitted before 33-36); then scripts/gpu-check on
# main's build (sanitizers included) -- the first on the TMA producer.
set -u
x=.device/s17b
mkdir -p build/default/tools build/default/tests $OUT/r
cp $x/chunktree build/default/tools/; cp $x/chunktree_gpu_tests $x/chunktree_handoff_probe build/default/tests/
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; git log -1 --format=%h
timeout 170 bench/compare.sh $OUT/r/ab main=$cli exp37=$x/chunktree_exp37 exp38=$x/chunktree_exp38 -- hydragen-micro spec-decode flashinfer-cascade small > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u; grep -E "b4096_p8k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0|p1k_b128_s0" $OUT/r/ab/compare.md | head -8
tar -C $OUT -czf $OUT/call2.tgz r
for shape in "--batch 4096 --heads 8 --kv-heads 1 --prefix 8192" "--batch 256 --heads 32 --kv-heads 8 --prefix 4096 --suffix 8 --queries 8" "--batch 256 --heads 32 --kv-heads 32 --prefix 32768"; do
  for split in default 1024 2048 4096 8192 0; do
    flags=""; [ $split != default ] && flags="--split $split"
    echo "== $shape split $split" >> $OUT/r/splits.txt
    timeout 20 $cli bench --repeats 20 $shape $flags >> $OUT/r/splits.txt 2>&1
  done
done
grep -E "^==|chunktree " $OUT/r/splits.txt | head -60
tar -C $OUT -czf $OUT/call2.tgz r; date -u
timeout 330 scripts/gpu-check --no-build --work /tmp/gc > $OUT/r/gpu-check.txt 2>&1; echo "gpu-check rc $?"
grep -A20 "gpu-check summary" $OUT/r/gpu-check.txt
grep -E "^\[  (PASSED|FAILED)" /tmp/gc/gpu-unit-tests.log | head -5
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r; date -u
