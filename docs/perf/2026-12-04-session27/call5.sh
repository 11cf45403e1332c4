#!/usr/bin/env bash
# Session 27, call 5 (device): the ceilings as now committed (HBM: 100 warm-ups, median of 30; GEMM
# back to one warm-up, median of 10), five times after 3 s idle.
set -u
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
for i in 1 2 3 4 5; do sleep 3; echo "new: $(.device/final/chunktree bench --preset small --csv /tmp/s.csv | grep 'ceilings measured')"; done
date -u
