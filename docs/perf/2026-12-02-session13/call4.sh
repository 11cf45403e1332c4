#!/usr/bin/env bash
# Session 13, call 4: the committed run of main with experiment 30 (and 28): bench/run_all.sh (every
# preset with peers, host-bench, decode loop, tables), the targets, GPU pytest on this build's
# wheel, then the whole scripts/gpu-check on the carried build (--no-build).
set -u
d=.device/s13
mkdir -p $OUT/run
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
tar -C .whl -xzf .whl/bundle.tgz  # FlashInfer's wheels and prebuilt modules, packed to fit the copy
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
timeout 330 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep make_plan $OUT/run/host.txt | head -4
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -12 $OUT/run/targets.txt
timeout 60 python3 -m pytest -q python/tests > $OUT/run/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/run/pytest.txt
tar -C $OUT -czf $OUT/call4run.tgz run && rm -rf $OUT/run; date -u
mkdir -p $OUT/r
timeout 285 scripts/gpu-check --no-build --work /tmp/gc > $OUT/r/gpu-check.txt 2>&1; echo "gpu-check rc $?"
sed -n '/gpu-check summary/,$p' $OUT/r/gpu-check.txt
mkdir -p $OUT/r/gc && cp /tmp/gc/*.log $OUT/r/gc/ 2>/dev/null
tar -C $OUT -czf $OUT/call4check.tgz r && rm -rf $OUT/r; ls -la $OUT; date -u
