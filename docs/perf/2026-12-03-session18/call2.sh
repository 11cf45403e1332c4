#!/usr/bin/env bash
# Session 18, call 2: the committed run of a15b201 (main with experiment 42, session 17's variant A
# of the cost model: the wgmma deal in mixed plans too) -- --strict quick grid and random trees on
# this CLI, bench/run_all.sh (every preset with peers, host-bench, decode loop, tables) and the
# targets -- then scripts/gpu-check --no-build on the same binaries (unit tests, every grid,
# memcheck, racecheck, synccheck), owed since ba9b1dd. Binaries and wheel built here, stripped, in
# .device/s18f.
set -u
x=.device/s18f
mkdir -p $OUT/run build/default/tools build/default/tests
cp $x/chunktree build/default/tools/; cp $x/chunktree_gpu_tests $x/chunktree_handoff_probe build/default/tests/
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; $cli info | head -2
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/run/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/run/check_quick.txt)/36"
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/run/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/run/check_trees.txt)/96"
tar -C .whl -xzf .whl/bundle.tgz  # FlashInfer's wheels and prebuilt modules, packed to fit the copy
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
tar -C $OUT -czf $OUT/call2run.tgz run; date -u
timeout 300 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -14 $OUT/run/targets.txt
rm -f $OUT/run/plots.tar
tar -C $OUT -czf $OUT/call2run.tgz run && rm -rf $OUT/run; date -u
mkdir -p $OUT/gc
timeout 260 scripts/gpu-check --no-build --work /tmp/gc > $OUT/gc/gpu-check.txt 2>&1; echo "gpu-check rc $?"
grep -A20 "gpu-check summary" $OUT/gc/gpu-check.txt
cp /tmp/gc/*.log $OUT/gc/ 2>/dev/null; tar -C $OUT -czf $OUT/call2gc.tgz gc && rm -rf $OUT/gc; date -u
