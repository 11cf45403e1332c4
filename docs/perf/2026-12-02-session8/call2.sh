#!/usr/bin/env bash
# Session 8, call 2: experiment 22 (bulk-copy rows) — correctness on the attention tests, racecheck on
# the odd shapes, then A/B against aeeadba; and where chunktree-graph's host time goes in the loop.
set -u
d=.device/s8
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
t=build/default/tests/chunktree_gpu_tests
$t --gtest_filter='Cuda/BackendAttention.*:CudaAttention.*:CudaReplay.*:CudaLevels.*:CudaMultiToken.*' > $OUT/unit22.txt 2>&1; echo "unit rc $?"; tail -n 3 $OUT/unit22.txt; grep -m5 FAILED $OUT/unit22.txt
c=build/default/tools/chunktree; $c gentests --quick /tmp/q > /dev/null && $c check --strict --backend cuda --jobs 16 /tmp/q/*.txt > /tmp/q.out; echo "quick rc $? $(grep -c ^PASSED /tmp/q.out)"
$c gentrees --count 96 --seed 7 --gpu-dtypes /tmp/tr > /dev/null && $c check --strict --backend cuda --jobs 16 /tmp/tr/*.txt > /tmp/tr.out; echo "trees rc $? $(grep -c ^PASSED /tmp/tr.out)"
compute-sanitizer --tool racecheck --error-exitcode 1 $t --gtest_filter='Cuda/BackendAttention.OddShapes/*' > $OUT/race22.txt 2>&1; echo "racecheck rc $?"; tail -n 2 $OUT/race22.txt
bench/compare.sh $OUT/ab22 exp22=$d/exp22/chunktree base=$d/base exp22b=$d/exp22/chunktree -- no-share private chunkattn-t3 small gqa-llama3 > $OUT/ab22.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/ab22/compare.md | cut -c1-160; rm -f $OUT/ab22/one.csv $OUT/ab22/*.txt
PYTHONPATH=/tmp/site python3 $d/loop_parts.py b64_p4k b8_p1k 2>&1 | tee $OUT/loop_parts.txt
date -u
