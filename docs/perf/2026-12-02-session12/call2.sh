#!/usr/bin/env bash
# Session 12, call 2: experiment 26b (the states kernels let the chained merge start once their
# producer has issued its last copy, instead of at entry: call 1 showed flashinfer-cascade
# p32k_b32_s0 +2.7 % with the trigger at entry). A/B end (this build) / entry (74df039) / base
# (7bce42b) / end again; then GPU pytest on the wheel of this build and scripts/gpu-check --no-build
# (sanitizers, full and sequence-first grids) on this build.
set -u
d=.device/s12
cli=build/default/tools/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 200 bench/compare.sh $OUT/r/ab end=$cli entry=$d/entry base=$d/base end2=$cli -- small chunkattn-t3 flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
PYTHONPATH=/tmp/site timeout 120 python3 -m pytest -q python/tests > $OUT/r/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/r/pytest.txt; date -u
timeout 330 scripts/gpu-check --no-build --work /tmp/gc > $OUT/r/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 16 $OUT/r/gpu-check.txt
grep -hE "^\[  FAILED|^FAILED" /tmp/gc/*.log /tmp/gc/*.out 2>/dev/null | head -10
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r; date -u
