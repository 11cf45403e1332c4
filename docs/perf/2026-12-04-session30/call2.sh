#!/usr/bin/env bash
# Session 30, call 2 (device): experiment 67b (dcec64c and after: claims only above half the SMs'
# worth of live tiles). This commit's GPU unit tests; the paged front end's A/B on private and small
# (bench/baselines.py --impl chunktree-paged) with main's wheel (3ce8979), e67's (the patch as
# prepared) and this commit's, in the order main e67 final final e67 main; then this commit's
# committed run (bench/committed_run.sh) unless the tests failed.
set -u
o=$OUT; w=/tmp/n2; rm -rf $w; mkdir -p $w $o/ab
timeout 200 .device/final/tests/chunktree_gpu_tests > $o/gpu_tests.txt 2>&1; rc=$?
echo "gpu tests rc $rc"; grep -E "PASSED|FAILED|tests ran" $o/gpu_tests.txt | tail -5
grep -E "OK \] CudaPaged\.ReplayedGrids" $o/gpu_tests.txt
[ $rc = 0 ] || exit 1
for p in private small; do .device/final/chunktree bench --preset $p --cases-json $w/cases_$p.json; done
for b in main e67 final; do python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site_$b .device/$b/wheel/*.whl; done
for run in main e67 final final2 e672 main2; do
  PYTHONPATH=$w/site_${run%2} timeout 60 python3 bench/baselines.py --cases $w/cases_private.json --cases $w/cases_small.json \
    --ceilings docs/perf/2026-12-04-session29-run/ceilings.json --out $o/ab/paged_$run.csv --impl chunktree-paged > $w/paged_$run.log 2>&1
  echo "paged $run rc $?"
done
python3 - $o/ab <<'PY'
import csv, sys, collections
o = sys.argv[1]
rows = collections.defaultdict(dict)
labels = ("main", "e67", "final", "final2", "e672", "main2")
for label in labels:
    for r in csv.DictReader(open(f"{o}/paged_{label}.csv")):
        if r["median_us"]: rows[(r["preset"], r["case"])][label] = float(r["median_us"])
print("preset case " + " ".join(labels))
for k, v in rows.items(): print(*k, *(v.get(l, "-") for l in labels))
PY
bench/committed_run.sh .device/final $o 330
