#!/usr/bin/env bash
# Session 20, call 4: scripts/gpu-check --no-build (unit tests, every grid, memcheck, racecheck,
# synccheck) and the GPU pytest on 94cc8ee's binaries and cp312 wheel (.device/s20r), the same as
# call 3's committed run.
set -u
x=.device/s20r
mkdir -p $OUT/gc build/default/tools build/default/tests
cp $x/chunktree build/default/tools/; cp $x/chunktree_gpu_tests $x/chunktree_handoff_probe build/default/tests/
date -u
timeout 300 scripts/gpu-check --no-build --work /tmp/gc > $OUT/gc/gpu-check.txt 2>&1; echo "gpu-check rc $?"
grep -A20 "gpu-check summary" $OUT/gc/gpu-check.txt
cp /tmp/gc/*.log $OUT/gc/ 2>/dev/null; date -u
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 200 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/gc/pytest.txt 2>&1; echo "pytest rc $?"; tail -3 $OUT/gc/pytest.txt
tar -C $OUT -czf $OUT/call4.tgz gc && rm -rf $OUT/gc; date -u
