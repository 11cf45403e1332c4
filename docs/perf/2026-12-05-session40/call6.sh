#!/usr/bin/env bash
# Session 40, call 6: where the engine path's decode step spends its GPU time (paged_profile.py over
# chunktree-paged-graph, b64_p4k and b256_p2k) beside the cache path's (session 38's loop_profile.py,
# b64_p4k), with main's wheel as merged this session (exp74's build, .device/s40x). Carry [".device/s40x"].
set -u
start=$SECONDS
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s40x/site .device/s40x/wheel/*.whl || exit 1
PYTHONPATH=/tmp/s40x/site timeout 100 python3 docs/perf/2026-12-05-session40/paged_profile.py > $OUT/paged_profile.txt 2>&1
echo "paged profile rc $? at $((SECONDS - start)) s"; cat $OUT/paged_profile.txt
PYTHONPATH=/tmp/s40x/site timeout 60 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k > $OUT/loop_profile.txt 2>&1
echo "cache profile rc $? at $((SECONDS - start)) s"; cat $OUT/loop_profile.txt
date -u
