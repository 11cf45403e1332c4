#!/usr/bin/env bash
# Session 12, call 4: the committed run of d73855c (experiments 26b and 27): bench/run_all.sh
# (every preset with peers, host-bench, decode loop, tables), the targets; GPU pytest on this
# build's wheel; then the sanitizers on the GPU tests that cover the wgmma tiles and the chained
# merge (the same filters as scripts/gpu-check; call 3 ran the unit tests and grids on this code).
set -u
d=.device/s12
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
tar -C .whl -xzf .whl/bundle.tgz  # FlashInfer's wheels and prebuilt modules, packed to fit the 64 MiB copy
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
timeout 420 bench/run_all.sh $OUT/run > $OUT/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep make_plan $OUT/run/host.txt | head -4
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -12 $OUT/run/targets.txt
timeout 60 python3 -m pytest -q python/tests > $OUT/run/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/run/pytest.txt
subset='Cuda/BackendAttention.OddShapes/*:CudaAttention.GqaGroupsUpTo32:CudaAttention.WideSharedSpansOnWgmmaTiles:Cuda/BackendLevels.OddShapes/*:CudaLevels.WideSharedSegmentsOnWgmmaTiles:Cuda/BackendMerge.*:CudaMerge.*:CudaMultiToken.CausalMasksInsideWideSharedItems:CudaCache.*:CudaCheck.SeedFilesOfOddShapesPassStrict'
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 $tests --gtest_filter="$subset" > $OUT/run/memcheck.txt 2>&1; echo "memcheck rc $? $(tail -1 $OUT/run/memcheck.txt)"
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $tests --gtest_filter='Cuda/BackendAttention.OddShapes/*:CudaAttention.WideSharedSpansOnWgmmaTiles:Cuda/BackendLevels.OddShapes/*:CudaMultiToken.CausalMasksInsideWideSharedItems' > $OUT/run/racecheck.txt 2>&1; echo "racecheck rc $? $(tail -1 $OUT/run/racecheck.txt)"
timeout 30 compute-sanitizer --tool synccheck --error-exitcode 1 $tests --gtest_filter='Cuda/BackendAttention.OddShapes/*' > $OUT/run/synccheck.txt 2>&1; echo "synccheck rc $? $(tail -1 $OUT/run/synccheck.txt)"
cp $OUT/run_all.log $OUT/run/
tar -C $OUT -czf $OUT/call4.tgz run && rm -rf $OUT/run; ls -la $OUT; date -u
