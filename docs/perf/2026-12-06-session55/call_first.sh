#!/usr/bin/env bash
# Session 55's first call, whichever card comes: on an H200, main's committed run and full grids
# (call_h200_run.sh); on an H100, experiment 95's sweep (session 54's next_call2.sh), since main's
# H100 run and checks are session 54's. Carry [".carry", ".device/s54c", ".device/s55b"] (66.4 MB
# with the tree, of the 67.1 allowed).
case $(nvidia-smi --query-gpu=name --format=csv,noheader) in
  *H200*) exec bash docs/perf/2026-12-06-session55/call_h200_run.sh ;;
  *) exec bash docs/perf/2026-12-06-session54/next_call2.sh ;;
esac
