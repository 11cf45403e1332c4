#!/usr/bin/env bash
# Session 66's call, for whatever card comes. Carry [".device/s65f", ".carry", ".device/probe"].
#   On an H200: session 65's call1.sh (the committed run on main 9f4854f, `.device/s65f`, with the two
#     full seed grids, then its GPU unit tests in the time left).
#   On an H100: 9f4854f's GPU unit tests, then session 65's per-tile trace of the four `small` rows
#     (any Hopper card; `call_small_trace.sh`), so a machine that is not the H200 still answers both.
here=$(dirname "$0")
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) exec bash "$here/../2026-12-07-session65/call1.sh" ;;
esac
bash "$here/../2026-12-07-session65/call1.sh"
exec bash "$here/../2026-12-07-session65/call_small_trace.sh"
