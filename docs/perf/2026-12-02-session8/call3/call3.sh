#!/usr/bin/env bash
# Session 8, call 3: the GPU unit tests at HEAD (the levels cases now run once per backend:
# tests/backends/levels_test.cpp, never run on a GPU), and
# the decode step's host parts with the Python changes of 08217b3.
set -u
d=.device/s8
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel2/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
t=build/default/tests/chunktree_gpu_tests
$t > $OUT/unit.txt 2>&1; echo "unit rc $?"; tail -n 3 $OUT/unit.txt; grep -E "^\[  FAILED" $OUT/unit.txt | head; grep -B5 -m3 "Failure" $OUT/unit.txt | head -40
python3 $d/loop_parts.py b64_p4k b256_p2k b8_p1k > $OUT/loop_parts.txt 2>&1; cut -c1-230 $OUT/loop_parts.txt
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt
date -u
