#!/usr/bin/env bash
# Session 8, call 1: the GPU suite at aeeadba (1f238c7, d48dd0e, 2e1a97a, aeeadba never ran on a GPU).
set -u
d=.device/s8
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; git log -1 --format=%h 2>/dev/null
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -E "FAILED|Failure" /tmp/gc/*.log | head -10
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt
date -u
