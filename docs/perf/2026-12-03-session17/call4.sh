#!/usr/bin/env bash
# Session 17, call 4: the committed run of ba9b1dd (experiment 36 under 34's ping-pong, 38's
# persistent wgmma grid when alone, 39's refitted cost model, variant B): --strict quick grid and
# random trees on this CLI, bench/run_all.sh (every preset with peers, host-bench, decode loop,
# tables) and the targets. Three refused starts left too little device time for the GPU pytest. (scripts/gpu-check ran on
# 81ffba4's kernels in call 2; 38 and 39 change only the grid and the split.)
set -u
mkdir -p $OUT/run build/default/tools
cp .device/s17r/chunktree build/default/tools/
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; $cli info | head -2
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/run/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/run/check_quick.txt)/36"
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/run/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/run/check_trees.txt)/96"
tar -C .whl -xzf .whl/bundle.tgz  # FlashInfer's wheels and prebuilt modules, packed to fit the copy
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl .device/s17r/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
tar -C $OUT -czf $OUT/call4run.tgz run; date -u
timeout 320 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -14 $OUT/run/targets.txt
rm -f $OUT/run/plots.tar
tar -C $OUT -czf $OUT/call4run.tgz run && rm -rf $OUT/run; date -u
