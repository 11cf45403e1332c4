#!/usr/bin/env bash
# Session 41, call 3 again (call3.sh's machine stopped answering ~500 s into it, and ~330 s of device
# time are left): scripts/gpu-check of main at 2125387 without its two full grids (31 s in session
# 40), under a limit that returns what finished; the steps print as they pass. Carry [".device/s41g"].
# Prediction: every step PASS; GPU unit tests 89 passed / 1 skipped, in well under session 40's 178 s
# (the fp64 reference now runs on every core).
start=$SECONDS
date -u; timeout 205 scripts/gpu-check --no-build --skip-full-grid --build-dir .device/s41g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; grep -E "^== |PASS|FAIL" $OUT/gpu_check.txt | tail -16
grep -E "^\[  (PASSED|FAILED) |tests ran" /tmp/gc/gpu-unit-tests.log | tail -4
tar -C /tmp -czf $OUT/logs.tgz gc --exclude='*/quick' --exclude='*/trees' --exclude='*/large' --exclude='*/seq_quick' 2>/dev/null; date -u
