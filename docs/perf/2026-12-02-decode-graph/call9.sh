#!/usr/bin/env bash
# Session 6, call 9: the merge kernel without its loop on one-per-unit grids (fix) against 6230f4c (old) and cb5b237 (new); GPU tests of the merge and replay.
set -u
d=.device/s6
bench/compare.sh $OUT/ab9 fix=$d/ab/fix old=$d/ab/old new=$d/ab/new fix2=$d/ab/fix -- small > $OUT/ab9.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/ab9/compare.md; rm -f $OUT/ab9/one.csv $OUT/ab9/*.txt
build/default/tests/chunktree_gpu_tests --gtest_filter='CudaReplay.*:CudaAttention.OddShapes:CudaAttention.MatchesTheReferenceOnRandomTrees:CudaLevels.OddShapes:CudaMultiToken.*' > $OUT/gpu-unit.txt 2>&1; echo "gpu unit rc $?"; grep -E "PASSED|FAILED" $OUT/gpu-unit.txt | head
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
PYTHONPATH=/tmp/site python3 -m pytest -q -x python/tests/test_cuda.py > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 2 $OUT/pytest.txt
