#!/usr/bin/env bash
# Session 9, call 5: the final committed run (the planner's second round): bench/run_all.sh,
# chunktree host-bench --case b1024_p2k three times more, bench/compare.sh of this CLI and 431f552's
# on the flashinfer-cascade preset (the row issue 9 compares), GPU pytest, scripts/gpu-check.
set -u
d=.device/s9
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
bench/run_all.sh $OUT/run > $OUT/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep -A6 "b1024_p2k" $OUT/run/host.txt | head -7
for i in 1 2 3; do build/default/tools/chunktree host-bench --case b1024_p2k >> $OUT/host_again.txt 2>&1; done; grep make_plan $OUT/host_again.txt
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv 2>&1 | tail -6
grep graph $OUT/run/decode_loop.txt | cut -c1-120
timeout 120 bench/compare.sh $OUT/abfc current=build/default/tools/chunktree old431=$d/old431 current2=build/default/tools/chunktree -- flashinfer-cascade > /dev/null 2>&1
grep -E "p32k|p8k_b256" $OUT/abfc/compare.md
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt; date -u
timeout 330 scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -hE "^\[  FAILED|Failure" /tmp/gc/*.log | head -10
tar -C $OUT -cf $OUT/run.tar run abfc && rm -rf $OUT/run $OUT/abfc
date -u
