#!/usr/bin/env bash
# Session 7, call 6: tiles built in item order (no sort of 80-byte tile records) — plan_parts A/B against e934453 on one host; GPU tests of attention and replay.
set -u
d=.device/s7
date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site-base $d/wheel-base/*.whl > /dev/null 2>&1 || echo "pip base failed"
(PYTHONPATH=/tmp/site-base python3 $d/plan_parts.py | sed 's/^/e934453 /'; PYTHONPATH=/tmp/site python3 $d/plan_parts.py | sed 's/^/HEAD    /') > $OUT/plan_parts.txt 2>&1; cat $OUT/plan_parts.txt | cut -c1-200
timeout 100 build/default/tests/chunktree_gpu_tests --gtest_filter='CudaReplay.*:CudaAttention.*' > $OUT/gpu-unit.txt 2>&1; echo "gpu unit rc $?"; grep -E "PASSED|FAILED" $OUT/gpu-unit.txt | head
date -u
