#!/usr/bin/env bash
# Session 7, call 4: 4da32be (one transfer per load + exp19) — GPU unit tests, GPU pytest, the decode loop (chunktree impls)
# and host-bench; experiment 21 (cp.async with L2::256B) against HEAD on no-share, private, chunkattn-t3, small.
set -u
d=.device/s7
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
build/default/tests/chunktree_gpu_tests > $OUT/gpu-unit.txt 2>&1; echo "gpu unit rc $?"; grep -E "PASSED|FAILED" $OUT/gpu-unit.txt | head
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 2 $OUT/pytest.txt
bench/compare.sh $OUT/ab21 exp21=$d/exp21 head=$d/head exp21b=$d/exp21 -- no-share private chunkattn-t3 small > $OUT/ab21.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/ab21/compare.md | cut -c1-150; rm -f $OUT/ab21/one.csv $OUT/ab21/*.txt
CHUNKTREE_COMMIT=4da32be python3 bench/decode_loop.py $OUT/decode_loop.csv --impls chunktree,chunktree-graph > $OUT/decode_loop.txt 2>&1; echo "decode_loop rc $?"
grep -E "^b[0-9]" $OUT/decode_loop.txt | cut -c1-220
build/default/tools/chunktree host-bench --csv $OUT/host.csv > $OUT/host.txt 2>&1; echo "host-bench rc $?"; grep -E "b1024|b64_" $OUT/host.txt | head -20
date -u
