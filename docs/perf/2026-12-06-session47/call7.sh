#!/usr/bin/env bash
# Session 47, call 7: experiment 83 (the cost model's claim rule, caad839 on main; .device/s47c:
# its wheel and GPU unit tests, whose kernels are main's 0c4130b's: only cost_model.cpp was rebuilt).
# A replayed grid now claims its first tiles where at most half the SMs' worth are live too, if they
# are long. Calls 5 and 6 found the cache path's b8_p1k_distinct replayed mma.sync kernel at 18.9 or
# 21.5 µs a layer depending on the build, with the empty wgmma kernel 1.78 or 1.93 µs before it.
# 1. loop_profile.py b8_p1k_distinct b8_p1k through main's wheel (s47m) and e83's, in turn, twice;
# 2. e83's whole GPU unit suite (the claims' test among it).
# Carry [".device/s47m", ".device/s47c"]. Prediction (written before the run): b8_p1k_distinct's
# mma.sync kernel 21.5 → ≤ 19 µs a layer (its replay span −80 µs of 890), b8_p1k unchanged (its plan
# claims as before); the unit suite passes.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e83=.device/s47c; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c7
for label in main e83 main e83; do
  PYTHONPATH=/tmp/w_$label timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b8_p1k_distinct b8_p1k >> $OUT/c7/loop_$label.txt 2>&1
  echo "== $label"; grep "replay span" $OUT/c7/loop_$label.txt | tail -2
done
timeout 150 .device/s47c/chunktree_gpu_tests > $OUT/c7/gpu_unit.txt 2>&1
echo "gpu unit rc $?"; tail -4 $OUT/c7/gpu_unit.txt
date -u
