#!/usr/bin/env bash
# Session 7, call 5 (final): HEAD — where CacheAttention.plan's host time goes (this wheel and e934453's, same host),
# the whole benchmark (run_all.sh), GPU pytest, then gpu-check.
set -u
d=.device/s7
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site-base $d/wheel-base/*.whl > /dev/null 2>&1 || echo "pip base failed"
(PYTHONPATH=/tmp/site-base python3 $d/plan_parts.py | sed 's/^/e934453 /'; PYTHONPATH=/tmp/site python3 $d/plan_parts.py | sed 's/^/HEAD    /') > $OUT/plan_parts.txt 2>&1; cat $OUT/plan_parts.txt | cut -c1-200
export PYTHONPATH=/tmp/site
bench/run_all.sh /tmp/ra > $OUT/run_all.log 2>&1; echo "run_all rc $?"
grep -E "^b[0-9]" /tmp/ra/decode_loop.txt | cut -c1-160
tar -C /tmp -czf $OUT/run_all.tgz ra; date -u
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt
scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
grep -E "FAILED|Failure" /tmp/gc/*.log | head -10
date -u
