#!/usr/bin/env bash
# Generates the seed project's quick grid and checks every file with --strict on the CPU backend.
set -euo pipefail
cli=$1
dir=$2
rm -rf "$dir"
"$cli" gentests --quick "$dir"
count=$(ls "$dir"/*.txt | wc -l)
[ "$count" -eq 36 ] || { echo "expected 36 quick-grid files, found $count"; exit 1; }
"$cli" check --strict --backend cpu --jobs 2 "$dir"/*.txt
