#!/usr/bin/env bash
# Not run: starts refused at 05:10, 05:22 and 05:35 UTC; at 05:47 the budget left (263 s) could not start a machine.
# Session 34, call 6: the GPU unit tests on the final code (6568d90: the review's scale bound and the
# 64-bit tag counter over eed852e; host checks only, no kernel change), binary built here, stripped, in
# .device/s34f. Carry [".device/s34f"].
date -u; timeout 200 .device/s34f/tests/chunktree_gpu_tests > $OUT/gpu-unit-tests.log 2>&1; echo "gpu unit tests rc $?"
grep -E "^\[  (PASSED|FAILED)|tests ran|\[ note" $OUT/gpu-unit-tests.log; date -u
