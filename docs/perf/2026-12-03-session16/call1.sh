#!/usr/bin/env bash
# Session 16, call 1: what session 15 changed in GPU code after its last GPU run (cuda
# plan_fingerprint, the paged schedule's memcmp, cuda_work::capturing, the reused spans buffer)
# and the -ftz kernels (experiment 31a), which never ran under the sanitizers: scripts/gpu-check
# (unit tests, grids, trees, memcheck, racecheck, synccheck), the GPU Python suite (tensor
# parallel with 1 NCCL rank included), host-bench B = 4096 (memcmp timing); then ncu of the wgmma
# kernel at main (31a) and at experiment 32 (ping-pong, a7fb260's kernel linked into HEAD's CLI),
# hydragen b4096_p8k_s0, --set full with SASS samples, to see where the ping-pong's time goes.
set -u
mkdir -p build/default/tools build/default/tests
cp .device/s16/chunktree build/default/tools/; cp .device/s16/chunktree_gpu_tests .device/s16/chunktree_handoff_probe build/default/tests/
cli=build/default/tools/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; git log -1 --format=%h
timeout 420 scripts/gpu-check --no-build --work /tmp/gc > $OUT/r/gpu-check.txt 2>&1; echo "gpu-check rc $?"
grep -A20 "gpu-check summary" $OUT/r/gpu-check.txt
grep -E "^\[  (PASSED|FAILED)" /tmp/gc/gpu-unit-tests.log | head -5
grep "FAILED" /tmp/gc/gpu-unit-tests.log | head -10
tar -C $OUT -czf $OUT/call1.tgz r
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl .device/s16/wheel/*.whl > $OUT/r/pip.txt 2>&1
cp python/chunktree/*.py /tmp/site/chunktree/
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 200 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/r/pytest.txt 2>&1; echo "pytest rc $?"; tail -3 $OUT/r/pytest.txt
grep -E "FAILED|Error" $OUT/r/pytest.txt | head -10
tar -C $OUT -czf $OUT/call1.tgz r
timeout 30 $cli host-bench --case b4096_p2k --repeats 100 > $OUT/r/host_b4096_p2k.txt 2>&1; grep -E "paged|make_plan " $OUT/r/host_b4096_p2k.txt
shape="bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192"
for v in main exp32; do
  bin=$cli; [ $v = exp32 ] && bin=.device/s16/chunktree_exp32
  $bin $shape 2>&1 | grep -E "chunktree |median" | head -3
  timeout 100 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/r/wg_$v $bin $shape > $OUT/r/ncu_$v.log 2>&1
  echo "ncu $v rc $?"
  ncu -i $OUT/r/wg_$v.ncu-rep --page details > $OUT/r/wg_$v.txt 2>&1
  ncu -i $OUT/r/wg_$v.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/r/wg_${v}_sass.csv.gz
  rm -f $OUT/r/wg_$v.ncu-rep
  grep -E "^    Duration|Tensor|Issue Slots Busy|Executed Ipc A" $OUT/r/wg_$v.txt | head -6
done
date -u
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r
