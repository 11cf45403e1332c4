#!/usr/bin/env bash
# Session 16, call 3: the committed run of main with experiment 33 (the wgmma softmax's reductions
# as trees): the GPU pytest on this build's wheel, then bench/run_all.sh (every preset with peers,
# host-bench, decode loop, tables) and the targets. (gpu-check ran on HEAD's kernels in call 1; the
# GPU unit tests and the --strict checks on experiment 33's kernel in call 2.)
set -u
mkdir -p $OUT/run build/default/tools
cp .device/s16r/chunktree build/default/tools/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; build/default/tools/chunktree info | head -2
tar -C .whl -xzf .whl/bundle.tgz  # FlashInfer's wheels and prebuilt modules, packed to fit the copy
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl .device/s16r/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/run/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 2 $OUT/run/pytest.txt
tar -C $OUT -czf $OUT/call3run.tgz run; date -u
timeout 360 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep -E "make_plan|paged" $OUT/run/host.txt | head -8
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -12 $OUT/run/targets.txt
rm -f $OUT/run/plots.tar
tar -C $OUT -czf $OUT/call3run.tgz run && rm -rf $OUT/run; date -u
