#!/usr/bin/env bash
# Installs the built project into a scratch prefix and builds and runs a consumer that finds it
# with find_package(chunktree).
set -euo pipefail
build_dir=$1
scratch=$2
rm -rf "$scratch"
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$(dirname "$0")/consumer" -B "$scratch/build" -G Ninja -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/consumer"
