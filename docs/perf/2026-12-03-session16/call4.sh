#!/usr/bin/env bash
# Session 16, call 4: experiment 35 (experiment 34's ping-pong with each stage's K and V released
# separately; branch exp35-kv-release). GPU unit tests on its build; quick grid, random and
# 1000-sequence trees with --strict; bench/compare.sh exp35 / base (main 26fbb56, experiment 33) /
# exp35 again on the presets with wgmma tiles; then ncu of exp35's wgmma kernel on hydragen b4096_p8k_s0.
set -u
x=.device/s16e
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $x/gpu_tests_exp35 > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
$x/chunktree_base gentests --quick /tmp/q > /dev/null; $x/chunktree_base gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $x/chunktree_base gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
timeout 60 $x/chunktree_exp35 check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/r/quick.txt)/36"
timeout 60 $x/chunktree_exp35 check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/r/trees.txt)/96"
timeout 60 $x/chunktree_exp35 check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large.txt 2>&1; echo "large rc $? $(grep -c ^PASSED $OUT/r/large.txt)/4"
date -u; tar -C $OUT -czf $OUT/call4.tgz r
timeout 200 bench/compare.sh $OUT/r/ab exp35=$x/chunktree_exp35 base=$x/chunktree_base exp35b=$x/chunktree_exp35 -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0|p1k_b128_s0|b512_p1k_s64" $OUT/r/ab/compare.md | head -12
tar -C $OUT -czf $OUT/call4.tgz r
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
timeout 60 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/r/wg_exp35 $x/chunktree_exp35 $shape > $OUT/r/ncu_exp35.log 2>&1
echo "ncu rc $?"
ncu -i $OUT/r/wg_exp35.ncu-rep --page details > $OUT/r/wg_exp35.txt 2>&1
ncu -i $OUT/r/wg_exp35.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/r/wg_exp35_sass.csv.gz
rm -f $OUT/r/wg_exp35.ncu-rep
grep -E "^    Duration|Issue Slots Busy" $OUT/r/wg_exp35.txt | head -2
date -u
tar -C $OUT -czf $OUT/call4.tgz r && rm -rf $OUT/r
