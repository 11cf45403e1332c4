#!/usr/bin/env bash
# Session 40, call 7 (the session's last device time, ~240 s): experiment 75 (branch exp75: NHD pages
# read by the wgmma producer's TMA), GPU tests and wheel in .device/s40y. First the new test alone,
# then the engine path's loop profile (paged_profile.py) and the cache path's beside it, then the
# paged, wide-tile and merge-wait GPU tests. Prediction: KERNEL_NOTES session 40, 75.
# Carry [".device/s40y"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 60 stdbuf -oL .device/s40y/chunktree_gpu_tests --gtest_filter='*WideTilesOverEveryPoolLayout*' > $OUT/new_test.txt 2>&1
echo "new test rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(FAILED|PASSED|OK) ' $OUT/new_test.txt | tail -3; grep -m3 -i "failure\|error" $OUT/new_test.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s40y/site .device/s40y/wheel/*.whl || exit 1
PYTHONPATH=/tmp/s40y/site timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py > $OUT/paged_profile.txt 2>&1
echo "paged profile rc $? at $((SECONDS - start)) s"; grep -v Warn $OUT/paged_profile.txt | grep -v _warn_once
PYTHONPATH=/tmp/s40y/site timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k > $OUT/loop_profile.txt 2>&1
echo "cache profile rc $? at $((SECONDS - start)) s"; grep "replay span" $OUT/loop_profile.txt
timeout 120 stdbuf -oL .device/s40y/chunktree_gpu_tests --gtest_filter='*Paged*:*MergeWaits*:*Wide*:*Replay*' > $OUT/tests.txt 2>&1
echo "tests rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(FAILED|PASSED|SKIPPED) ' $OUT/tests.txt | tail -6
date -u
