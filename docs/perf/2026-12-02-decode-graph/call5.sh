#!/usr/bin/env bash
# Session 6, call 5: cb5b237 — the whole benchmark (run_all.sh: presets, host-bench, baselines, decode loop with floors), then gpu-check.
set -u
d=.device/s6
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
bench/run_all.sh /tmp/ra > $OUT/run_all.log 2>&1; echo "run_all rc $?"
grep -v "^  \|prebuilt\|JIT\|from /tmp" /tmp/ra/decode_loop.txt | cut -c1-100
tar -C /tmp -czf $OUT/run_all.tgz ra
scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 11 $OUT/gpu-check.txt
