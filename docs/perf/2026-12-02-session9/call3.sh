#!/usr/bin/env bash
# Session 9, call 3: the committed run of bbdffe6 (the planner of plan-speed; kernels as 1a762b7):
# bench/run_all.sh, chunktree host-bench --case b1024_p2k twice more, GPU pytest, scripts/gpu-check.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
bench/run_all.sh $OUT/run > $OUT/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep -A8 "b1024_p2k" $OUT/run/host.txt | head -8
for i in 1 2; do build/default/tools/chunktree host-bench --case b1024_p2k >> $OUT/host_again.txt 2>&1; done; grep make_plan $OUT/host_again.txt
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv 2>&1 | tail -30
cut -d, -f1-2,10-11 $OUT/run/decode_loop.csv | column -t -s, | head -40
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt; date -u
timeout 300 scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -hE "^\[  FAILED|Failure" /tmp/gc/*.log | head -10
tar -C $OUT -cf $OUT/run.tar run && rm -rf $OUT/run
date -u
