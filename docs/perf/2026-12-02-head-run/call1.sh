#!/usr/bin/env bash
# Session 7, call 1: HEAD (1b71f39) — merge fix A/B against 6230f4c, GPU pytest, gpu-check.
set -u
d=.device/s7
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
date -u
bench/compare.sh $OUT/ab head=build/default/tools/chunktree old=$d/old -- small chunkattn-t3 > $OUT/ab.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/ab/compare.md; rm -f $OUT/ab/one.csv $OUT/ab/*.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
PYTHONPATH=/tmp/site python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 3 $OUT/pytest.txt
scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -E "FAILED|Failure" /tmp/gc/*.log | head -20
date -u
