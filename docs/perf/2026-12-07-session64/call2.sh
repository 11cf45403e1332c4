#!/usr/bin/env bash
# Session 64's cut call, for when too little device time is left for call1.sh: on an H200 only, the
# committed run owed since session 44 (main a983856, `.device/s64f`) with run_all's default 330 s, the
# quick grid and random trees and pytest; no full grids, no unit tests. On any other card nothing runs.
# Carry [".device/s64f", ".carry"].
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in
  *H200*) bash bench/committed_run.sh .device/s64f "$OUT/run" 330 ;;
  *) nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "not an H200: nothing run" ;;
esac
