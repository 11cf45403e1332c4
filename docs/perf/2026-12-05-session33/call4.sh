#!/usr/bin/env bash
# Session 33, call 4: experiment 68 against main (now with 69), next_calls.sh's ab68 (main / e68 on
# NHD pages, then HND, then NHD again). Wheels built here: main b1e7f65's, and main + exp68 (983e31f).
# Carry [".device/next"].
bash docs/perf/2026-12-04-session31/next/next_calls.sh ab68
cd $OUT && tar -czf ab68.tgz pass*.csv pass*.txt && rm -f pass*.csv pass*.txt
