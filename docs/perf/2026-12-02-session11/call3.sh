#!/usr/bin/env bash
# Session 11, call 3: (1) why experiment 24 missed: ncu --set full of the wgmma kernel on hydragen
# b4096_p8k_s0 for the base build (fe010e9's kernels, = this build's) and the ping-pong build, with
# per-instruction stall samples; (2) the planner of 9ec7acb/a145936 on the device host: host-bench
# b1024_p2k, fe010e9's CLI and this one alternately; (3) this build (the cache's nodes now hold
# pieces) through the GPU unit tests, the quick grid, random and 1000-sequence trees with --strict.
set -u
d=.device/s11
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/p
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
for b in base pingpong; do
  timeout 100 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/p/wg_$b $d/$b $shape > $OUT/p/ncu_$b.log 2>&1
  echo "ncu $b rc $?"
  ncu -i $OUT/p/wg_$b.ncu-rep --page details > $OUT/p/wg_$b.txt 2>&1
  ncu -i $OUT/p/wg_$b.ncu-rep --page source --csv --print-source sass > $OUT/p/wg_${b}_sass.csv 2>&1
done
rm -f $OUT/p/*.ncu-rep; date -u
for i in 1 2 3; do
  for b in base new; do c=$cli; [ $b = base ] && c=$d/base; echo "$b $($c host-bench --case b1024_p2k | grep make_plan | tr -s ' ' | tr '\n' ';')"; done
done > $OUT/p/host.txt 2>&1; cat $OUT/p/host.txt | cut -c1-200
timeout 150 $tests > $OUT/p/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/p/unit.txt | head
$cli gentests --quick /tmp/q > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/p/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/p/quick.txt)/36"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/p/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/p/trees.txt)/96"
$cli gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null && timeout 60 $cli check --strict --backend cuda /tmp/l/*.txt > $OUT/p/large.txt 2>&1; echo "large rc $? $(grep -c ^PASSED $OUT/p/large.txt)/4"
tar -C $OUT -czf $OUT/call3.tgz p && rm -rf $OUT/p; ls -la $OUT; date -u
