#!/usr/bin/env bash
# Session 14, call 3: the fixes of call 2's findings (the torch.compile test traced a backward: the
# step now runs under no_grad; the example sampled a CUDA tensor with a host generator): the Python
# suite of the paged front end again, the transformers example at its defaults on the GPU and short on
# the CPU, and compute-sanitizer memcheck over every paged GPU test.
set -u
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl .device/s14/wheel/*.whl > $OUT/r/pip.txt 2>&1
cp python/chunktree/*.py /tmp/site/chunktree/
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 150 python3 -m pytest -q -p no:cacheprovider python/tests/test_paged.py > $OUT/r/pytest.txt 2>&1; echo "pytest rc $?"; tail -3 $OUT/r/pytest.txt
tar -C $OUT -czf $OUT/call3.tgz r
timeout 90 python3 examples/hf_parallel_sampling.py --device cuda > $OUT/r/example_cuda.txt 2>&1; echo "example cuda rc $?"; tail -2 $OUT/r/example_cuda.txt
timeout 60 python3 examples/hf_parallel_sampling.py --device cpu --steps 8 > $OUT/r/example_cpu.txt 2>&1; echo "example cpu rc $?"; tail -2 $OUT/r/example_cpu.txt
tar -C $OUT -czf $OUT/call3.tgz r
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 1 $tests --gtest_filter='*Paged*' > $OUT/r/memcheck.txt 2>&1; echo "memcheck rc $?"; grep -E "PASSED|FAILED|ERROR SUMMARY" $OUT/r/memcheck.txt | tail -3
date -u
tar -C $OUT -czf $OUT/call3.tgz r && rm -rf $OUT/r
