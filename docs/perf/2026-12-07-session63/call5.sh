#!/usr/bin/env bash
# Session 63's last call: on an H200 only, the committed run owed since session 44 (main d2775a7,
# `.device/s63f`), cut to what ~490 s of device time holds: run_all with its default 330 s, the quick
# grid and random trees, pytest; no full grids, no unit tests. On any other card nothing runs.
# Carry [".device/s63f", ".carry"].
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in
  *H200*) bash bench/committed_run.sh .device/s63f "$OUT/run" 330 ;;
  *) nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "not an H200: nothing run" ;;
esac
