#!/usr/bin/env bash
# Session 30, call 5 (device; the command as run, with carry [".device"]): the whole GPU unit test
# suite of 67c's build (549213b), in the session's last device seconds.
timeout 140 .device/e67c/tests/chunktree_gpu_tests > $OUT/gpu_tests_all.txt 2>&1; echo rc $?; grep -E "PASSED|FAILED|tests ran" $OUT/gpu_tests_all.txt | tail -4
