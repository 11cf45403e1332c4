#!/usr/bin/env bash
# Session 19, call 5: main (0443d16: a15b201's kernels, experiment 43's instrumentation merged and
# off) checked on the GPU -- scripts/gpu-check --no-build and the GPU pytest -- and the tile trace
# of the two spec-decode MHA rows still behind FlashInfer's cascade (P3), with main's trace CLI.
# Built here, stripped into .device/s19m: chunktree, chunktree_gpu_tests, chunktree_handoff_probe,
# wheel/ (cp312), chunktree_trace (-DCHUNKTREE_TILE_TRACE=ON).
set -u
x=.device/s19m
mkdir -p $OUT/r build/default/tools build/default/tests
cp $x/chunktree build/default/tools/; cp $x/chunktree_gpu_tests $x/chunktree_handoff_probe build/default/tests/
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
tt=.device/s19t/tile_trace.py
for b in 256 64; do
  CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/trace_spec_b${b}_mha.csv timeout 60 $x/chunktree_trace bench --repeats 3 --warm --batch $b --heads 32 --kv-heads 32 --dim 128 --chunk 64 --prefix 4096 --suffix 8 --queries 8 > $OUT/r/trace_spec_b${b}_mha.bench.txt 2>&1
  echo "== spec b${b}_mha_p4k_s8_q8"; python3 $tt $OUT/r/trace_spec_b${b}_mha.csv $OUT/r/trace_spec_b${b}_mha.csv.wgmma | tee $OUT/r/trace_spec_b${b}_mha.txt
done
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/r/pytest_main.txt 2>&1; echo "pytest main rc $?"; tail -1 $OUT/r/pytest_main.txt
tar -C $OUT -czf $OUT/call5.tgz r; date -u
timeout 280 scripts/gpu-check --no-build --work /tmp/gc > $OUT/r/gpu-check.txt 2>&1; echo "gpu-check rc $?"
grep -A20 "gpu-check summary" $OUT/r/gpu-check.txt
mkdir -p $OUT/r/gc; cp /tmp/gc/*.log $OUT/r/gc/ 2>/dev/null
tar -C $OUT -czf $OUT/call5.tgz r && rm -rf $OUT/r; date -u
