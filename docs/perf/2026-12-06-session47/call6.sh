#!/usr/bin/env bash
# Session 47, call 6: which change since 2125387 (77) made the cache path's b8_p1k_distinct decode
# step slower. Call 5 found its replayed mma.sync kernel 18.9 → 21.5 µs a layer through main's wheel
# against 2125387's (b8_p1k unchanged). loop_profile.py b8_p1k_distinct b8_p1k through the wheels of
# 77 (s41c), 79 (s42z), 79b (s42w), 79c alone (s43c), 6a485c1 (s44m: 79-79f) and main (s47m: + 82),
# then 77's again. Carry [".device/s47b"] (the wheels alone). Prediction (written before the run): the
# step appears with 79 itself, the one change that touched the launches and PartialArgs both kernels
# read (its token_stride), since 79b-82 only changed the wgmma producer.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/c6
for label in s41c s42z s42w s43c s44m s47m s41c; do
  [ -d /tmp/w_$label ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_$label .device/s47b/$label/*.whl || exit 1
  PYTHONPATH=/tmp/w_$label timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b8_p1k_distinct b8_p1k >> $OUT/c6/loop_$label.txt 2>&1
  echo "== $label"; grep "replay span" $OUT/c6/loop_$label.txt | tail -2
done
date -u
