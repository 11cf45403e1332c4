#!/usr/bin/env bash
# Session 64's last call (~540 s of device time left): on an H200, call2.sh's cut committed run with
# run_all held to 300 s and the whole run to 430 s; on any other card a983856's GPU unit tests.
# Carry [".device/s64f", ".carry"].
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in
  *H200*)
    timeout 430 bash bench/committed_run.sh .device/s64f "$OUT/run" 300
    [ -f "$OUT/run/run.tgz" ] || { tar -C "$OUT/run" -czf /tmp/run.tgz run && rm -rf "$OUT/run/run" && mv /tmp/run.tgz "$OUT/run/run.tgz"; } ;;
  *)
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    x=/tmp/x64f && rm -rf $x && mkdir -p $x && xz -dc .device/s64f/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
    timeout 220 $x/chunktree_gpu_tests > "$OUT/gpu_unit_tests.txt" 2>&1
    echo "== unit tests rc $?"; grep -E "^\[  (PASSED|FAILED|SKIPPED)|tests ran" "$OUT/gpu_unit_tests.txt" | tail -8 ;;
esac
