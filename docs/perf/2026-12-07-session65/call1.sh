#!/usr/bin/env bash
# Session 65's call for the next session, for whatever card comes. Carry [".device/s65f", ".carry"].
#   On an H200: the committed run owed since session 44 (main 9f4854f, `.device/s65f`), with the two
#     full seed grids, then its GPU unit tests in the time left.
#   On an H100: 9f4854f's GPU unit tests only (session 65's argument checks, host code, on a GPU), to
#     keep the session's device time for an H200.
# Session 64's call1.sh on this session's build.
BUILD=.device/s65f exec bash "$(dirname "$0")/../2026-12-07-session64/call1.sh"
