#!/usr/bin/env bash
# Session 55: the committed run of main's kernels (ad73297) on the H200 that issues 11 and 13 name,
# then the two full seed grids: session 54's call2.sh, run from `.device/s54c` (the same CLI and
# wheel as its `.device/s54m`, without the test binaries, so that the call fits beside `.carry`).
# Only on an H200: session 54's run of this code was on an H100. Carry [".device/s54c", ".carry"].
name=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$name"
case $name in *H200*) ;; *) echo "not an H200: no committed run"; exit 3 ;; esac
exec bash <(sed 's|\.device/s54m|.device/s54c|g' docs/perf/2026-12-06-session54/call2.sh)
