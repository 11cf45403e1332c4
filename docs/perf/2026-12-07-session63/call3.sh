#!/usr/bin/env bash
# Session 63's third call: the committed run owed since session 44, on an H200 only (call2.sh's H200
# branch); on any other card it stops at once (the H100 figures of this code are session 62's run).
# Carry [".device/s63f", ".carry"].
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$card" in
  *H200*) exec bash docs/perf/2026-12-07-session63/call2.sh ;;
  *) nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "not an H200: nothing run" ;;
esac
