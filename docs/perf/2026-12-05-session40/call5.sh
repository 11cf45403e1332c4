#!/usr/bin/env bash
# Session 40, call 5: experiment 74 on eager calls (call 4's CLI rows are graph replays): the decode
# loop's layer shapes called eagerly through the Python package, main's wheel (.device/s40r) and
# e74's (.device/s40x) in turn, two passes (eager_calls.py). Carry [".device/s40x", ".device/s40r"].
set -u
start=$SECONDS
for b in s40r s40x; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for pass in 1 2; do for b in s40r s40x; do
  PYTHONPATH=/tmp/$b/site:bench timeout 60 python3 docs/perf/2026-12-05-session40/eager_calls.py "$b/$pass" 2>&1 | tail -4
  echo "  ($b pass $pass at $((SECONDS - start)) s)"
done; done
date -u
