#!/usr/bin/env bash
# Session 47, call 4: two questions from the committed run (call 2) and call 3, on main's wheel
# (0c4130b, .device/s47m), one machine:
# 1. How much of the engine path's decode-step wgmma time is the pages' box count: the same step over
#    16-token and 64-token pages (page_profile.py), beside the cache path's (loop_profile.py), two passes.
# 2. Whether the cache path's b8_p1k_distinct step really rose since session 41 (+11 % in its GPU part
#    between the two H100 runs): bench/decode_loop.py b8_p1k_distinct and b8_p1k, chunktree-graph,
#    through 2125387's wheel (.device/s41c) and main's, in turn, twice.
# Carry [".device/s47m", ".device/s41c"]. Prediction (written before the run): over 64-token pages the
# engine path's wgmma kernel takes b64_p4k ~19–20 µs a layer (22.5 over 16-token pages, the cache path's
# ~18) and b256_p2k ~25 (28.7); b8_p1k_distinct's step the same through both wheels within 2 % (the
# +11 % was the machines).
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session47
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m s41=.device/s41c; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c4
for pass in 1 2; do
  for page in 16 64; do
    PYTHONPATH=/tmp/s_main timeout 60 python3 $here/page_profile.py $page b64_p4k b256_p2k >> $OUT/c4/page$page.txt 2>&1
    echo "== page $page pass $pass ($((SECONDS - start)) s)"; grep "replay span" $OUT/c4/page$page.txt | tail -2
  done
  PYTHONPATH=/tmp/s_main timeout 60 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k b256_p2k >> $OUT/c4/cache.txt 2>&1
  echo "== cache pass $pass ($((SECONDS - start)) s)"; grep "replay span" $OUT/c4/cache.txt | tail -2
done
for label in s41 main s41 main; do
  PYTHONPATH=/tmp/s_$label timeout 90 python3 bench/decode_loop.py /tmp/dl_$label.csv --cases b8_p1k_distinct,b8_p1k --impls chunktree-graph \
    --steps 16 --warmup 3 >> $OUT/c4/decode_$label.txt 2>&1
  echo "== decode $label ($((SECONDS - start)) s)"; grep "us/step" $OUT/c4/decode_$label.txt | tail -2
done
(cd $OUT && tar -czf c4.tgz c4 && rm -rf c4)
date -u
