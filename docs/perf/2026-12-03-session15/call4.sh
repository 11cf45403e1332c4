#!/usr/bin/env bash
# Session 15, call 4: the committed run of main with experiment 31a (the partial-state kernels built
# with -ftz; experiment 32 reverted): the GPU pytest on this build's wheel (the paged front end's
# suite with FlashInfer's decode and cascade wrappers, torch.compile, the transformers example),
# the example at float16 and bfloat16, then bench/run_all.sh (every preset with peers, host-bench,
# decode loop, tables) and the targets. (No scripts/gpu-check: the session's device time is short;
# the GPU unit tests and the --strict checks ran on this kernel in call 2.)
set -u
mkdir -p $OUT/run
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
tar -C .whl -xzf .whl/bundle.tgz  # FlashInfer's wheels and prebuilt modules, packed to fit the copy
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl .device/s14/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 100 python3 -m pytest -q -p no:cacheprovider python/tests > $OUT/run/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 2 $OUT/run/pytest.txt
for t in float16 bfloat16; do timeout 40 python3 examples/hf_parallel_sampling.py --device cuda --dtype $t > $OUT/run/example_$t.txt 2>&1; echo "example $t rc $?"; tail -2 $OUT/run/example_$t.txt; done
tar -C $OUT -czf $OUT/call4run.tgz run; date -u
timeout 330 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep -E "make_plan|paged" $OUT/run/host.txt | head -8
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -12 $OUT/run/targets.txt
tar -C $OUT -czf $OUT/call4run.tgz run && rm -rf $OUT/run; date -u
