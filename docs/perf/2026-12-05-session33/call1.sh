#!/usr/bin/env bash
# Session 33, call 1 (the device was lent at 01:51 UTC after a pause): experiment 69's GPU unit tests
# (which hold this session's new tests: the 2^20-token whole span, strides on an axis of one
# element), memcheck of the replay tests, and the A/B main / e69 (next_calls.sh, session 31).
# Carry [".device/next"].
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
bash docs/perf/2026-12-04-session31/next/next_calls.sh ab69
