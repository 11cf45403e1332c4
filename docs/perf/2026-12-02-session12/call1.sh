#!/usr/bin/env bash
# Session 12, call 1: experiment 26 (the merge chained to the states kernel, programmatic dependent
# launch). The carried build is the experiment's: GPU unit tests, quick grid, random trees with
# --strict; then bench/compare.sh of pdl (this build) / base (7bce42b's CLI) / pdl again on the
# presets with merging rows; the ncu profile of experiment 25's wgmma kernel (owed: hydragen
# b4096_p8k_s0, --set full, SASS stall samples); host-bench b1024_p2k three times (planning target).
set -u
d=.device/s12
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 150 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -30 $OUT/r/unit.txt; tar -C $OUT -czf $OUT/call1.tgz r; exit 1; }
$cli gentests --quick /tmp/q > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/r/quick.txt)/36"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/r/trees.txt)/96"
date -u
timeout 240 bench/compare.sh $OUT/r/ab pdl=$cli base=$d/base pdl2=$cli -- small chunkattn-t3 flashinfer-cascade private > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
timeout 100 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/r/wg $cli $shape > $OUT/r/ncu.log 2>&1
echo "ncu rc $?"
ncu -i $OUT/r/wg.ncu-rep --page details > $OUT/r/wg.txt 2>&1
ncu -i $OUT/r/wg.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/r/wg_sass.csv.gz
rm -f $OUT/r/wg.ncu-rep; date -u
for i in 1 2 3; do $cli host-bench --case b1024_p2k | grep -E 'make_plan|upload' | tr -s ' '; done > $OUT/r/host.txt 2>&1; cut -c1-160 $OUT/r/host.txt
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r; ls -la $OUT; date -u
