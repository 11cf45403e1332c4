#!/usr/bin/env bash
# Session 7, call 2: HEAD — the whole benchmark (run_all.sh).
set -u
d=.device/s7
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench/run_all.sh /tmp/ra > $OUT/run_all.log 2>&1; echo "run_all rc $?"
grep -v "^  \|prebuilt\|JIT\|from /tmp" /tmp/ra/decode_loop.txt | cut -c1-100
tar -C /tmp -czf $OUT/run_all.tgz ra; date -u
