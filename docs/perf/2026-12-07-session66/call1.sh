#!/usr/bin/env bash
# Session 66's call, for whatever card comes. Carry [".device/s65f", ".carry", ".device/probe", ".device/probe66"].
#   On an H200: session 65's call1.sh (the committed run on main 9f4854f, `.device/s65f`, with the two
#     full seed grids, then its GPU unit tests in the time left).
#   On an H100: call_trace_ab.sh (the trace instrument's A/B), then call_ncu_small.sh (ncu's source
#     counters on two `small` rows' mma.sync kernel): KERNEL_NOTES session 66's two predictions. Session
#     66 ran this script's first H100 branch (9f4854f's unit tests, the `small` rows' trace) by hand.
here=$(dirname "$0")
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) exec bash "$here/../2026-12-07-session65/call1.sh" ;;
esac
bash "$here/call_trace_ab.sh"
exec bash "$here/call_ncu_small.sh"
