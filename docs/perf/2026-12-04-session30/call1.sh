#!/usr/bin/env bash
# Session 30, call 1 (prepared in session 29 as next/next_call.sh; main run twice, labelled main and main2): experiment 67, a replayed grid's
# first tiles claimed one per SM. Before it, on the development machine:
#   git apply docs/perf/2026-12-04-session29/next/exp67-claimed-first-tiles-on-26bbc06.patch && ninja -C build/default
#   mkdir -p .device/e67/tests && strip -o .device/e67/chunktree build/default/tools/chunktree
#   strip -o .device/e67/tests/chunktree_gpu_tests build/default/tests/chunktree_gpu_tests
#   python3 -m pip wheel . --no-deps -w .device/e67/wheel; then main's CLI and wheel as .device/main/.
#  1. e67's GPU unit tests (the replay tests claim on every replayed launch).
#  2. The paged front end (bench/baselines.py --impl chunktree-paged) on private, no-share, small and
#     chunkattn-t3 with main's wheel, e67's, main's again.
set -u
o=$OUT; w=/tmp/n1; rm -rf $w; mkdir -p $w
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
timeout 200 .device/e67/tests/chunktree_gpu_tests > $o/gpu_tests.txt 2>&1; echo "gpu tests rc $?"; grep -E "PASSED|FAILED" $o/gpu_tests.txt | tail -4
for p in private no-share small chunkattn-t3; do .device/main/chunktree bench --preset $p --cases-json $w/cases_$p.json; done
for b in main e67; do python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site_$b .device/$b/wheel/*.whl; done
for run in main e67 main2; do
  PYTHONPATH=$w/site_${run%2} timeout 90 python3 bench/baselines.py --cases $w/cases_private.json --cases $w/cases_no-share.json \
    --cases $w/cases_small.json --cases $w/cases_chunkattn-t3.json --ceilings docs/perf/2026-12-04-session29-run/ceilings.json \
    --out $o/paged_$run.csv --impl chunktree-paged > $w/paged_$run.log 2>&1
  echo "paged $run rc $?"
done
python3 - $o <<'PY'
import csv, sys, collections
o = sys.argv[1]
rows = collections.defaultdict(list)
for label in ("main", "e67", "main2"):
    for r in csv.DictReader(open(f"{o}/paged_{label}.csv")):
        if r["median_us"]: rows[(r["preset"], r["case"])].append((label, float(r["median_us"])))
for k, v in rows.items(): print(k, v)
PY
