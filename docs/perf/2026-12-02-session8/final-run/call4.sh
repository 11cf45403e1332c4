#!/usr/bin/env bash
# Session 8, call 4 (final): the decode step's host parts in the loop (loop_parts.py), the whole
# benchmark (run_all.sh), the flashinfer-cascade preset alone (its p32k rows were slower only inside
# run_all), GPU pytest, then gpu-check.
set -u
d=.device/s8
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel2/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
python3 $d/loop_parts.py b64_p4k b256_p2k b8_p1k > $OUT/loop_parts.txt 2>&1; cut -c1-230 $OUT/loop_parts.txt
bench/run_all.sh /tmp/ra > $OUT/run_all.log 2>&1; echo "run_all rc $?"
grep -E "^b[0-9]" /tmp/ra/decode_loop.txt | grep -E "chunktree-graph|decode-graph|cascade-graph" | cut -c1-170
grep -E "b1024_p2k +make_plan" /tmp/ra/host.txt
build/default/tools/chunktree bench --preset flashinfer-cascade --csv /tmp/ra/fc_alone.csv > /tmp/ra/fc_alone.txt 2>&1; grep p32k /tmp/ra/fc_alone.txt | grep "chunktree "
tar -C /tmp -czf $OUT/run_all.tgz ra; date -u
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt
scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -hE "^\[  FAILED|Failure" /tmp/gc/*.log | head -10
tar -C /tmp -czf $OUT/gc-logs.tgz --exclude='*.txt' gc 2>/dev/null
date -u
