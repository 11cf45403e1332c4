#!/usr/bin/env bash
# Session 15, call 1 (session 14's call 3, never started there; the build of d0fee97): after session
# 14's call 2 findings (the torch.compile test traced a backward: its step now runs under no_grad;
# the example sampled a CUDA tensor with a host generator) and the plan that reuses its memory: the
# GPU unit tests, the Python suite of the paged front end (FlashInfer's decode
# and cascade wrappers beside it), the transformers example at its defaults on the GPU and short on
# the CPU, the paged plan's host time for B = 1024 and 4096 (host-bench, and through Python), and
# compute-sanitizer memcheck over every paged GPU test; then the ncu profile of experiment 30's wgmma
# kernel (owed by KERNEL_NOTES 30: hydragen b4096_p8k_s0, --set full, SASS stall samples).
set -u
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 130 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head -5
tar -C $OUT -czf $OUT/call1.tgz r
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl .device/s14/wheel/*.whl > $OUT/r/pip.txt 2>&1
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests/test_paged.py > $OUT/r/pytest.txt 2>&1; echo "pytest rc $?"; tail -3 $OUT/r/pytest.txt
tar -C $OUT -czf $OUT/call1.tgz r
timeout 60 python3 examples/hf_parallel_sampling.py --device cuda > $OUT/r/example_cuda.txt 2>&1; echo "example cuda rc $?"; tail -2 $OUT/r/example_cuda.txt
timeout 40 python3 examples/hf_parallel_sampling.py --device cpu --steps 8 > $OUT/r/example_cpu.txt 2>&1; echo "example cpu rc $?"; tail -2 $OUT/r/example_cpu.txt
for c in b1024_p2k b4096_p2k; do timeout 30 $cli host-bench --case $c --repeats 100 > $OUT/r/host_$c.txt 2>&1; grep -E "paged|make_plan " $OUT/r/host_$c.txt; done
timeout 30 python3 - > $OUT/r/python_plan.txt 2>&1 <<'PY'
import time, numpy as np, torch, chunktree
for B in (1024, 4096):
    P = 2048 // 16
    indptr = (np.arange(B + 1) * (P + 1)).astype(np.int32)
    indices = np.concatenate([np.tile(np.arange(P), (B, 1)), (P + np.arange(B))[:, None]], axis=1).ravel().astype(np.int32)
    last = np.full(B, 5, np.int32)
    w = chunktree.PagedAttention(device="cuda")
    times = []
    for i in range(60):
        start = time.perf_counter()
        w.plan(indptr, indices, last, 32, 8, 128, 16)
        times.append(time.perf_counter() - start)
    print(f"python PagedAttention.plan B={B}, 2K prompt in pages of 16 (numpy int32 arrays): median {np.median(times[10:]) * 1e6:.1f} us, p10 {np.percentile(times[10:], 10) * 1e6:.1f} us")
PY
cat $OUT/r/python_plan.txt
tar -C $OUT -czf $OUT/call1.tgz r
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $tests --gtest_filter='*Paged*' > $OUT/r/memcheck.txt 2>&1; echo "memcheck rc $?"; grep -E "PASSED|FAILED|ERROR SUMMARY" $OUT/r/memcheck.txt | tail -3
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
timeout 100 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/r/wg $cli $shape > $OUT/r/ncu.log 2>&1
echo "ncu rc $?"
ncu -i $OUT/r/wg.ncu-rep --page details > $OUT/r/wg.txt 2>&1
ncu -i $OUT/r/wg.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/r/wg_sass.csv.gz
rm -f $OUT/r/wg.ncu-rep
date -u
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r
