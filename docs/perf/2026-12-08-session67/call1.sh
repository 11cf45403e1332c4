#!/usr/bin/env bash
# Session 67's first call for the next session, for whatever card comes. Carry [".device/s67f", ".carry",
# ".device/probe67", ".device/probe", ".device/probe66"].
#   On an H200: the committed run owed since session 44 on main's CLI, GPU tests and wheel
#     (`.device/s67f`, built at 114c329: run_all.sh now ends with the read reference, and targets.txt
#     gives P1's launch and read bounds), with the two full seed grids, then the GPU unit tests in the
#     time left (session 64's call1.sh). Then, on the same warm machine, call_probe.sh.
#   On any other card: call_probe.sh (the timeline, the read reference, the unit tests, session 66's
#     trace A/B and ncu call).
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) BUILD=.device/s67f exec bash "$(dirname "$0")/../2026-12-07-session64/call1.sh" ;;
  *) exec bash "$(dirname "$0")/call_probe.sh" ;;
esac
