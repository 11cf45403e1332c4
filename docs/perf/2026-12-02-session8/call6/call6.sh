#!/usr/bin/env bash
# Session 8, call 6: the whole GPU suite and GPU pytest on the final code (c4a19b2's planner; later
# commits are docs only).
set -u
d=.device/s8
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel5/*.whl > /dev/null 2>&1 || echo "pip failed"
PYTHONPATH=/tmp/site python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt
scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -hE "^\[  FAILED|Failure" /tmp/gc/*.log | head -10
date -u
