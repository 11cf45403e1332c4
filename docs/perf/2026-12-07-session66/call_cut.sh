#!/usr/bin/env bash
# Session 66's cut call, for when too little device time is left for call1.sh (RUN_S: the whole run's
# seconds, default 430; RUN_ALL_S: run_all's, default 300). On an H200: the committed run on main
# 9f4854f (`.device/s65f`) with the quick grid, random trees and pytest; no full grids, no unit tests.
# On any other card: call1.sh's H100 branch (the trace A/B, then
# call_ncu_small.sh).
# Carry [".device/s65f", ".carry", ".device/probe", ".device/probe66"].
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*)
    timeout "${RUN_S:-430}" bash bench/committed_run.sh .device/s65f "$OUT/run" "${RUN_ALL_S:-300}"
    # Cut short by the timeout, the run's files would come back one by one (8 at most): pack them.
    [ -f "$OUT/run/run.tgz" ] || { tar -C "$OUT/run" -czf /tmp/run.tgz run && rm -rf "$OUT/run/run" && mv /tmp/run.tgz "$OUT/run/run.tgz"; } ;;
  *) exec bash "$(dirname "$0")/call1.sh" ;;
esac
