#!/usr/bin/env bash
# Session 7, call 3: experiment 19 (tile records carry item and first run) against e934453 (= 1b71f39's kernels), every preset;
# the flashinfer-cascade preset at e934453, cb5b237 and 6230f4c (p32k_b128_s0 was +23 % in the 04:23 run); GPU tests of exp19.
set -u
d=.device/s7
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench/compare.sh $OUT/ab19 exp19=$d/exp19 base=$d/base exp19b=$d/exp19 > $OUT/ab19.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/ab19/compare.md | awk -F'|' 'NR<=2 || $8+0 > 1.015 || $8+0 < 0.985' | cut -c1-150 ; rm -f $OUT/ab19/one.csv $OUT/ab19/*.txt
bench/compare.sh $OUT/abfc base=$d/base cb5b237=$d/cb5b237 old=$d/old base2=$d/base -- flashinfer-cascade > $OUT/abfc.log 2>&1; echo "compare rc $?"
grep -v shapes $OUT/abfc/compare.md; rm -f $OUT/abfc/one.csv $OUT/abfc/*.txt
build/default/tests/chunktree_gpu_tests > $OUT/gpu-unit.txt 2>&1; echo "gpu unit rc $?"; grep -E "PASSED|FAILED" $OUT/gpu-unit.txt | head
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
date -u
