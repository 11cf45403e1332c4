#!/usr/bin/env bash
# Session 13, call 3: experiment 30 (the wgmma producer loops over its passes inside each segment)
# alone (exp30, on cd1e96d) and with experiment 29's ping-pong (exp29_30, the carried build).
# GPU unit tests on the carried build; quick grid, random and 1000-sequence trees with --strict on
# both CLIs; bench/compare.sh exp30 / base / exp29_30 / exp30 again on the presets with wgmma tiles.
set -u
d=.device/s13
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -40 $OUT/r/unit.txt; tar -C $OUT -czf $OUT/call3.tgz r; exit 1; }
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $cli gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
for c in exp29_30=$cli exp30=$d/exp30; do
  n=${c%%=*}; b=${c#*=}
  timeout 60 $b check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick_$n.txt 2>&1; echo "$n quick rc $? $(grep -c ^PASSED $OUT/r/quick_$n.txt)/36"
  timeout 60 $b check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees_$n.txt 2>&1; echo "$n trees rc $? $(grep -c ^PASSED $OUT/r/trees_$n.txt)/96"
  timeout 60 $b check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large_$n.txt 2>&1; echo "$n large rc $? $(grep -c ^PASSED $OUT/r/large_$n.txt)/4"
done
date -u
timeout 300 bench/compare.sh $OUT/r/ab exp30=$d/exp30 base=$d/base exp29_30=$d/exp29_30 exp30b=$d/exp30 -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0|p1k_b32_s0" $OUT/r/ab/compare.md | head -8
tar -C $OUT -czf $OUT/call3.tgz r && rm -rf $OUT/r; date -u
