#!/usr/bin/env bash
# Session 16, call 2: experiments 33 (the wgmma softmax's row maximum and sum as balanced trees,
# branch exp33-softmax-trees) and 34 (experiment 32's ping-pong consumers with the same trees).
# GPU unit tests on exp33's build; quick grid, random and 1000-sequence trees with --strict on both
# CLIs; bench/compare.sh exp33 / base (HEAD 01b67b0) / exp34 / exp33 again on the presets with wgmma
# tiles; then ncu (--set full, SASS samples) of exp33's and exp34's wgmma kernel on hydragen b4096_p8k_s0.
set -u
x=.device/s16x
base=.device/s16/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $x/gpu_tests_exp33 > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
$base gentests --quick /tmp/q > /dev/null; $base gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $base gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
for v in exp33 exp34; do
  timeout 60 $x/chunktree_$v check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick_$v.txt 2>&1; echo "$v quick rc $? $(grep -c ^PASSED $OUT/r/quick_$v.txt)/36"
  timeout 60 $x/chunktree_$v check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees_$v.txt 2>&1; echo "$v trees rc $? $(grep -c ^PASSED $OUT/r/trees_$v.txt)/96"
  timeout 60 $x/chunktree_$v check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large_$v.txt 2>&1; echo "$v large rc $? $(grep -c ^PASSED $OUT/r/large_$v.txt)/4"
done
date -u; tar -C $OUT -czf $OUT/call2.tgz r
timeout 260 bench/compare.sh $OUT/r/ab exp33=$x/chunktree_exp33 base=$base exp34=$x/chunktree_exp34 exp33b=$x/chunktree_exp33 -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0|p1k_b128_s0|b512_p1k_s64" $OUT/r/ab/compare.md | head -12
tar -C $OUT -czf $OUT/call2.tgz r
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
for v in exp33 exp34; do
  timeout 80 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/r/wg_$v $x/chunktree_$v $shape > $OUT/r/ncu_$v.log 2>&1
  echo "ncu $v rc $?"
  ncu -i $OUT/r/wg_$v.ncu-rep --page details > $OUT/r/wg_$v.txt 2>&1
  ncu -i $OUT/r/wg_$v.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/r/wg_${v}_sass.csv.gz
  rm -f $OUT/r/wg_$v.ncu-rep
  grep -E "^    Duration|Issue Slots Busy|Tensor is" $OUT/r/wg_$v.txt | head -3
done
date -u
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r
