#!/usr/bin/env bash
# Session 27, call 3 (device): the committed run of main at f8fad90 (experiments 58 and 59: Q before the ring in first tiles) --
# --strict quick grid and random trees on this CLI, bench/run_all.sh (every preset with peers,
# host-bench, decode loop, tables), the targets, then the GPU pytest on this build's cp312 wheel.
# Binaries and wheel built here, stripped, in .device/final; FlashInfer's wheels and prebuilt
# modules in .carry/bundle.tgz.
set -u
x=.device/final
mkdir -p $OUT/run build/default/tools .whl
cp $x/chunktree build/default/tools/
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; $cli info | head -2
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/run/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/run/check_quick.txt)/36"
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/run/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/run/check_trees.txt)/96"
tar -C .whl -xzf .carry/bundle.tgz
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
date -u
timeout 330 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -20 $OUT/run/targets.txt
rm -f $OUT/run/plots.tar
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/run/pytest.txt 2>&1; echo "pytest rc $?"; tail -3 $OUT/run/pytest.txt
tar -C $OUT -czf $OUT/call3run.tgz run && rm -rf $OUT/run; date -u
