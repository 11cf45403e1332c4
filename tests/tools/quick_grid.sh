#!/usr/bin/env bash
# Generates a quick grid of seed-format files and checks every file with --strict on the CPU
# backend: quick_grid.sh CLI DIR COUNT [GENTESTS OPTION...] (COUNT: the files the grid must have;
# --seq-first: the sequence-first grid).
set -euo pipefail
cli=$1
dir=$2
expected=$3
shift 3
rm -rf "$dir"
"$cli" gentests --quick "$@" "$dir"
count=$(ls "$dir"/*.txt | wc -l)
[ "$count" -eq "$expected" ] || { echo "expected $expected quick-grid files, found $count"; exit 1; }
"$cli" check --strict --backend cpu --jobs 2 "$dir"/*.txt
