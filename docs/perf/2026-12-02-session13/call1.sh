#!/usr/bin/env bash
# Session 13, call 1: the whole scripts/gpu-check on main (cd1e96d: experiment 28 included; session
# 12 ran only a subset on it), and, niced beside it, FlashInfer's four modules prebuilt for the
# later calls' bench/run_all.sh (this checkout has no .whl/flashinfer-aot).
set -u
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > /dev/null 2>&1 || echo "pip failed"
(PYTHONPATH=/tmp/site MAX_JOBS=12 nice -n 19 timeout 500 python3 bench/build_flashinfer_aot.py --out /tmp/aot > $OUT/r/aot.txt 2>&1; echo "aot rc $?" >> $OUT/r/aot.txt) &
aot=$!
timeout 480 scripts/gpu-check --no-build --work /tmp/gc > $OUT/r/gpu-check.txt 2>&1; echo "gpu-check rc $?"
sed -n '/gpu-check summary/,$p' $OUT/r/gpu-check.txt
mkdir -p $OUT/r/gc && cp /tmp/gc/*.log $OUT/r/gc/ 2>/dev/null
date -u
wait $aot; tail -2 $OUT/r/aot.txt
[ -f /tmp/aot/manifest.json ] && tar -C /tmp -czf $OUT/aot.tgz aot
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r; ls -la $OUT; date -u
