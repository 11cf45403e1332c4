#!/usr/bin/env bash
# Session 15, call 2: experiment 31 (the partial-state kernels built with -ftz: exp2f is one
# MUFU.EX2; exp31b adds the wgmma consumers' O rescale skipped when no row's maximum moved). The
# carried build is exp31b: GPU unit tests; quick grid, random and 1000-sequence trees with --strict
# on exp31a and exp31b; bench/compare.sh exp31b / base (d0fee97) / exp31a / exp31b again on the
# presets with wgmma tiles and the mma.sync ones (no-share, chunkattn-t3). (Issue 11's Python fixes
# move to the next call: with FlashInfer's bundle this call's carry is over 64 MiB.)
set -u
d=.device/s15
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -40 $OUT/r/unit.txt; tar -C $OUT -czf $OUT/call2.tgz r; exit 1; }
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $cli gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
for c in exp31b=$cli exp31a=$d/exp31a; do
  n=${c%%=*}; b=${c#*=}
  timeout 60 $b check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick_$n.txt 2>&1; echo "$n quick rc $? $(grep -c ^PASSED $OUT/r/quick_$n.txt)/36"
  timeout 60 $b check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees_$n.txt 2>&1; echo "$n trees rc $? $(grep -c ^PASSED $OUT/r/trees_$n.txt)/96"
  timeout 60 $b check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large_$n.txt 2>&1; echo "$n large rc $? $(grep -c ^PASSED $OUT/r/large_$n.txt)/4"
done
date -u; tar -C $OUT -czf $OUT/call2.tgz r
timeout 330 bench/compare.sh $OUT/r/ab exp31b=$cli base=$d/base exp31a=$d/exp31a exp31b2=$cli -- hydragen-micro spec-decode flashinfer-cascade no-share chunkattn-t3 > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0|b32_mha_4k|b512_gqa8x1_1k|np1024_ns0" $OUT/r/ab/compare.md | head -10
tar -C $OUT -czf $OUT/call2.tgz r
date -u
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r
