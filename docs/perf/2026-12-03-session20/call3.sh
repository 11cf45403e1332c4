#!/usr/bin/env bash
# Session 20, call 3: the committed run of 94cc8ee (experiment 47's v1 kernel with the refined
# packing rule) -- --strict quick grid and random trees on this CLI, bench/run_all.sh (every preset
# with peers, host-bench, decode loop, tables) and the targets. Binaries and cp312 wheel built
# here, stripped, in .device/s20r. scripts/gpu-check and the GPU pytest follow in call 4.
set -u
x=.device/s20r
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
date -u
timeout 420 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -20 $OUT/run/targets.txt
rm -f $OUT/run/plots.tar
tar -C $OUT -czf $OUT/call3run.tgz run && rm -rf $OUT/run; date -u
