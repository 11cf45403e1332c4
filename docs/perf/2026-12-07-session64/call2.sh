#!/usr/bin/env bash
# Session 64's cut call, for when too little device time is left for call1.sh: on an H200 only, the
# committed run owed since session 44 (main a983856, `.device/s64f`) with run_all's default 330 s, the
# quick grid and random trees and pytest; no full grids, no unit tests. On any other card nothing runs.
# Carry [".device/s64f", ".carry"].
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in
  *H200*)
    # Cut short by the call's limit, the run's files would come back one by one (8 at most): pack them.
    timeout "${RUN_S:-520}" bash bench/committed_run.sh .device/s64f "$OUT/run" 330
    [ -f "$OUT/run/run.tgz" ] || { tar -C "$OUT/run" -czf /tmp/run.tgz run && rm -rf "$OUT/run/run" && mv /tmp/run.tgz "$OUT/run/run.tgz"; } ;;
  *) nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "not an H200: nothing run" ;;
esac
