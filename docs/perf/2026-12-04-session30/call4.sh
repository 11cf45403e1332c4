#!/usr/bin/env bash
# Session 30, call 4 (device): experiment 67c (the claim decided per plan on the host,
# cost_model::claims_first_tiles). This commit's paged, replay and many-tiles GPU tests; then the paged
# front end (bench/baselines.py --impl chunktree-paged) on private and small with main's wheel
# (3ce8979, no claims), 67c's (this commit) and 67b's (b94112a), in the order main e67c final e67c main.
set -u
o=$OUT; w=/tmp/n4; rm -rf $w; mkdir -p $w $o/ab
timeout 80 .device/e67c/tests/chunktree_gpu_tests --gtest_filter='CudaPaged.*:CudaReplay.*:*Persistent*:*Thousands*' > $o/gpu_tests.txt 2>&1; rc=$?
echo "gpu tests rc $rc"; grep -E "PASSED|FAILED|tests ran" $o/gpu_tests.txt | tail -5
[ $rc = 0 ] || exit 1
for p in private small; do .device/final/chunktree bench --preset $p --cases-json $w/cases_$p.json; done
for b in main e67c final; do python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site_$b .device/$b/wheel/*.whl; done
for run in main e67c final e67c2 main2; do
  PYTHONPATH=$w/site_${run%2} timeout 50 python3 bench/baselines.py --cases $w/cases_private.json --cases $w/cases_small.json \
    --ceilings docs/perf/2026-12-04-session29-run/ceilings.json --out $o/ab/paged_$run.csv --impl chunktree-paged > $w/paged_$run.log 2>&1
  echo "paged $run rc $?"
done
python3 - $o/ab <<'PY'
import csv, sys, collections
o = sys.argv[1]
rows = collections.defaultdict(dict)
labels = ("main", "e67c", "final", "e67c2", "main2")
for label in labels:
    try:
        for r in csv.DictReader(open(f"{o}/paged_{label}.csv")):
            if r["median_us"]: rows[(r["preset"], r["case"])][label] = float(r["median_us"])
    except OSError: pass
print("preset case " + " ".join(labels))
for k, v in rows.items(): print(*k, *(v.get(l, "-") for l in labels))
PY
cd $o && tar -czf ab.tgz ab && rm -rf ab
