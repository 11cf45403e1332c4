#!/usr/bin/env bash
# A committed benchmark run on the GPU machine, as a session's device call makes it: the --strict
# quick grid and random trees, bench/run_all.sh (chunktree, its host work, SDPA and FlashInfer on the
# same cases, the decode loop), the targets (bench/targets.py), the GPU pytest on the build's
# wheel. BUILD holds what the development machine built from the commit: the CLI (BUILD/chunktree,
# or gzipped as BUILD/chunktree.gz) and the wheel (BUILD/wheel/*.whl); .carry/bundle.txz holds
# FlashInfer's wheels and prebuilt modules (bench/make_bundle.sh makes it). BUILD and OUT are taken
# from the repository root. Leaves OUT/run.tgz (plots.tar left out), whose files go flat under
# docs/perf/<date>-<what>/ (`tar -xzf run.tgz --strip-components=1 -C DIR`). Exits non-zero if any
# step failed. With --full-grids, also the two full seed grids (chunk-first and sequence-first,
# --strict, CUDA), into OUT/run/full_grids.txt.
#
#   bench/committed_run.sh BUILD OUT [RUN_ALL_TIMEOUT_S] [--full-grids]
set -u
cd "$(dirname "$0")/.."
build=${1:?usage: bench/committed_run.sh BUILD OUT [RUN_ALL_TIMEOUT_S] [--full-grids]}
out=${2:?usage: bench/committed_run.sh BUILD OUT [RUN_ALL_TIMEOUT_S] [--full-grids]}
run=$out/run
status=0
fail() { echo "committed_run: $*"; status=1; }

# A warm machine keeps earlier calls' files: start from none of them (but .whl/, which a development
# machine keeps its FlashInfer wheels in: only the bundle's wheels are installed from it).
rm -rf "$run" /tmp/committed_run && mkdir -p "$run" build/default/tools .whl /tmp/committed_run || exit 1
# The CLI may come gzipped (BUILD/chunktree.gz): every tracked file travels with a device call too,
# and a call carries 64 MiB in all.
if [ -f "$build/chunktree.gz" ]; then gunzip -c "$build/chunktree.gz" > build/default/tools/chunktree && chmod +x build/default/tools/chunktree
else cp "$build/chunktree" build/default/tools/; fi || exit 1
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; $cli info | head -2

# The correctness grids of the CLI that is timed.
$cli gentests --quick /tmp/committed_run/q > /dev/null && $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/committed_run/t > /dev/null || exit 1
for grid in q t; do
  files=(/tmp/committed_run/$grid/*.txt)
  log=$run/check_$([ $grid = q ] && echo quick || echo trees).txt
  timeout 40 $cli check --strict --backend cuda --jobs 16 "${files[@]}" > "$log" 2>&1 || fail "check $grid failed (rc $?)"
  echo "$(basename "$log" .txt): $(grep -c ^PASSED "$log")/${#files[@]}"
done

tar -C .whl -xJf .carry/bundle.txz || exit 1
mapfile -t bundled < <(tar -tJf .carry/bundle.txz | grep '\.whl$' | sed 's|^\./|.whl/|')
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/committed_run/site "${bundled[@]}" "$build"/wheel/*.whl ||
  exit 1
export PYTHONPATH=/tmp/committed_run/site FLASHINFER_NO_DOWNLOAD=1
date -u
timeout "${3:-330}" bench/run_all.sh "$run" > "$run/run_all.log" 2>&1 || fail "run_all failed (rc $?)"
date -u
python3 bench/targets.py "$run/chunktree.csv" "$run/baselines.csv" "$run/decode_loop.csv" "$run/host.csv" --ceilings "$run/ceilings.json" \
  --reads "$run/reads.csv" > "$run/targets.txt" 2>&1 ||
  fail "targets.py failed"
tail -24 "$run/targets.txt"
grep ceilings "$run/run_all.log" | head -2
rm -f "$run/plots.tar"
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > "$run/pytest.txt" 2>&1 || fail "pytest failed (rc $?)"
tail -1 "$run/pytest.txt"
if [ "${4:-}" = --full-grids ]; then  # gpu-check's two full-grid steps, on the CLI that was timed
  timeout 150 scripts/gpu-check --no-build --build-dir build/default --work /tmp/committed_run/grids \
    --only full-grid,seq-first-full-grid > "$run/full_grids.txt" 2>&1 || fail "full grids failed (rc $?)"
  grep -A3 "gpu-check summary" "$run/full_grids.txt"
fi
tar -C "$out" -czf "$out/run.tgz" run && rm -rf "$run" || fail "packing run.tgz failed"
date -u
exit $status
