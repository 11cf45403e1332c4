#!/usr/bin/env bash
# Not run in session 16 (its device time was spent); run as session 17's call 1
# (docs/perf/2026-12-03-session17/call1.sh, the same steps plus ncu). Session 17's first kernel call: experiment 36 (the
# wgmma producer's TMA boxes, branch exp36-wgmma-tma) alone and with 34's ping-pong on top. Build
# here first: the CLI and GPU tests of exp36.patch, and the CLI of exp36pp.patch (36 under 34's
# ping-pong consumers), both against main, stripped into .device/s17. GPU unit tests, --strict
# grids and trees, racecheck on the wide-tile tests, then bench/compare.sh exp36 / main / exp36pp /
# exp36 again.
set -u
x=.device/s17
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $x/gpu_tests_exp36 > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
$x/chunktree_main gentests --quick /tmp/q > /dev/null; $x/chunktree_main gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null; $x/chunktree_main gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null
for v in exp36 exp36pp; do
  timeout 60 $x/chunktree_$v check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick_$v.txt 2>&1; echo "$v quick rc $? $(grep -c ^PASSED $OUT/r/quick_$v.txt)/36"
  timeout 60 $x/chunktree_$v check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees_$v.txt 2>&1; echo "$v trees rc $? $(grep -c ^PASSED $OUT/r/trees_$v.txt)/96"
  timeout 60 $x/chunktree_$v check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large_$v.txt 2>&1; echo "$v large rc $? $(grep -c ^PASSED $OUT/r/large_$v.txt)/4"
done
timeout 120 compute-sanitizer --tool racecheck --error-exitcode 1 $x/gpu_tests_exp36 --gtest_filter='CudaAttention.WideSharedSpansOnWgmmaTiles:CudaMultiToken.CausalMasksInsideWideSharedItems' > $OUT/r/racecheck.txt 2>&1; echo "racecheck rc $?"; tail -2 $OUT/r/racecheck.txt
tar -C $OUT -czf $OUT/call5.tgz r
timeout 260 bench/compare.sh $OUT/r/ab exp36=$x/chunktree_exp36 main=$x/chunktree_main exp36pp=$x/chunktree_exp36pp exp36b=$x/chunktree_exp36 -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; grep -E "b4096_p8k_s0|b2048_p4k_s0|b256_gqa_p4k_s8_q8|p32k_b256_s0" $OUT/r/ab/compare.md | head -8
tar -C $OUT -czf $OUT/call5.tgz r && rm -rf $OUT/r
