#!/usr/bin/env bash
# Session 17, call 1: session 16's call5.sh (experiment 36, the wgmma producer's TMA boxes, alone
# and under 34's ping-pong), built here from branches exp36-wgmma-tma and exp36pp-tma-pingpong by
# swapping the two kernel sources into main's build; then ncu (--set full, SASS samples) of both
# wgmma kernels on hydragen b4096_p8k_s0.
set -u
x=.device/s17
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 150 $x/gpu_tests_exp36 > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
$x/chunktree_main gentests --quick /tmp/q > /dev/null; $x/chunktree_main gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $x/chunktree_main gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
for v in exp36 exp36pp; do
  timeout 60 $x/chunktree_$v check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick_$v.txt 2>&1; echo "$v quick rc $? $(grep -c ^PASSED $OUT/r/quick_$v.txt)/36"
  timeout 60 $x/chunktree_$v check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees_$v.txt 2>&1; echo "$v trees rc $? $(grep -c ^PASSED $OUT/r/trees_$v.txt)/96"
  timeout 60 $x/chunktree_$v check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large_$v.txt 2>&1; echo "$v large rc $? $(grep -c ^PASSED $OUT/r/large_$v.txt)/4"
done
timeout 90 compute-sanitizer --tool racecheck --error-exitcode 1 $x/gpu_tests_exp36 --gtest_filter='CudaAttention.WideSharedSpansOnWgmmaTiles:CudaMultiToken.CausalMasksInsideWideSharedItems' > $OUT/r/racecheck.txt 2>&1; echo "racecheck rc $?"; tail -2 $OUT/r/racecheck.txt
tar -C $OUT -czf $OUT/call1.tgz r; date -u
timeout 220 bench/compare.sh $OUT/r/ab exp36=$x/chunktree_exp36 main=$x/chunktree_main exp36pp=$x/chunktree_exp36pp exp36b=$x/chunktree_exp36 -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u; grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0" $OUT/r/ab/compare.md | head -8
tar -C $OUT -czf $OUT/call1.tgz r
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
for v in exp36 exp36pp; do
  timeout 45 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/r/wg_$v $x/chunktree_$v $shape > $OUT/r/ncu_$v.log 2>&1
  echo "ncu $v rc $?"
  ncu -i $OUT/r/wg_$v.ncu-rep --page details > $OUT/r/wg_$v.txt 2>&1
  ncu -i $OUT/r/wg_$v.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/r/wg_${v}_sass.csv.gz
  rm -f $OUT/r/wg_$v.ncu-rep
done
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r; date -u
