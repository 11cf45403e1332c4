#!/usr/bin/env bash
# Session 68's first call for the next session, for whatever card comes. Carry [".device/s68f", ".carry",
# ".device/probe67", ".device/probe", ".device/probe66"].
#   On an H200: the committed run owed since session 44 on main's CLI, GPU tests and wheel
#     (`.device/s68f`, built at 09d6593: session 67's read reference and P1 bounds, and session 68's
#     host work of a decode step, whose prediction is in KERNEL_NOTES session 68), with the two full
#     seed grids, then the GPU unit tests in the time left (session 64's call1.sh).
#   On any other card: session 67's call_probe.sh on the same build (the timeline, the read reference,
#     the unit tests, session 66's trace A/B and ncu call).
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) BUILD=.device/s68f exec bash "$(dirname "$0")/../2026-12-07-session64/call1.sh" ;;
  *) MAIN=.device/s68f exec bash "$(dirname "$0")/../2026-12-08-session67/call_probe.sh" ;;
esac
