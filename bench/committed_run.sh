#!/usr/bin/env bash
# A committed benchmark run on the GPU machine, as a session's device call makes it: the --strict
# quick grid and random trees, bench/run_all.sh (chunktree, its host work, SDPA and FlashInfer on the
# same cases, the decode loop), the targets (bench/targets.py), and the GPU pytest on the build's
# wheel. BUILD holds what the development machine built from the commit: the CLI (BUILD/chunktree)
# and the wheel (BUILD/wheel/*.whl); .carry/bundle.tgz holds FlashInfer's wheels and prebuilt
# modules (bench/README.md). Leaves OUT/run.tgz, to unpack under docs/perf/<date>-<what>/.
#
#   bench/committed_run.sh BUILD OUT [RUN_ALL_TIMEOUT_S]
set -u
cd "$(dirname "$0")/.."
build=${1:?usage: bench/committed_run.sh BUILD OUT [RUN_ALL_TIMEOUT_S]}
out=${2:?usage: bench/committed_run.sh BUILD OUT [RUN_ALL_TIMEOUT_S]}
run=$out/run
mkdir -p "$run" build/default/tools .whl
cp "$build/chunktree" build/default/tools/
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; $cli info | head -2
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > "$run/check_quick.txt" 2>&1; echo "quick rc $? $(grep -c ^PASSED "$run/check_quick.txt")/36"
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > "$run/check_trees.txt" 2>&1; echo "trees rc $? $(grep -c ^PASSED "$run/check_trees.txt")/96"
tar -C .whl -xzf .carry/bundle.tgz
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl "$build"/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
date -u
timeout "${3:-330}" bench/run_all.sh "$run" > "$run/run_all.log" 2>&1; echo "run_all rc $?"; date -u
python3 bench/targets.py "$run/chunktree.csv" "$run/baselines.csv" > "$run/targets.txt" 2>&1; tail -20 "$run/targets.txt"
grep ceilings "$run/run_all.log" | head -2
rm -f "$run/plots.tar"
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > "$run/pytest.txt" 2>&1; echo "pytest rc $?"; tail -1 "$run/pytest.txt"
tar -C "$out" -czf "$out/run.tgz" run && rm -rf "$run"; date -u
