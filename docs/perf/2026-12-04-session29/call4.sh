#!/usr/bin/env bash
# Session 29, call 4 (device): experiment 66, the first tiles one per SM.
#  1. The probe: which SM each CTA of a grid of the mma.sync kernel's shape lands on.
#  2. e66's GPU unit tests.
#  3. bench/compare.sh main (f9a52b4) / e66 / main again over private and chunkattn-t3.
#  4. The paged front end (bench/baselines.py --impl chunktree-paged) on private and no-share with
#     main's wheel, e66's, main's again (the floors from the committed run's ceilings).
set -u
o=$OUT; w=/tmp/c4; rm -rf $w; mkdir -p $w
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
.device/probe/sm_probe | tee $o/probe.txt
timeout 170 .device/e66/tests/chunktree_gpu_tests > $o/gpu_tests.txt 2>&1; echo "gpu tests rc $?"; grep -E "PASSED|FAILED" $o/gpu_tests.txt | tail -4
timeout 200 bench/compare.sh $w/ab main=.device/final/chunktree e66=.device/e66/chunktree mainB=.device/final/chunktree -- private chunkattn-t3 > $o/compare.log 2>&1
echo "compare rc $?"; cat $w/ab/compare.md
for p in private no-share; do .device/final/chunktree bench --preset $p --cases-json $w/cases_$p.json; done
for b in final e66; do python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site_$b .device/$b/wheel/*.whl; done
for run in final e66 final; do
  PYTHONPATH=$w/site_$run timeout 60 python3 bench/baselines.py --cases $w/cases_private.json --cases $w/cases_no-share.json \
    --ceilings docs/perf/2026-12-04-session29-run/ceilings.json --out $o/paged_$run.csv --impl chunktree-paged > $w/paged_$run.log 2>&1
  echo "paged $run rc $?"
done
python3 - $o <<'PY'
import csv, sys, collections
o = sys.argv[1]
rows = collections.defaultdict(list)
for label in ("final", "e66"):
    for r in csv.DictReader(open(f"{o}/paged_{label}.csv")):
        if r["median_us"]: rows[(r["preset"], r["case"])].append((label, float(r["median_us"])))
for k, v in rows.items(): print(k, v)
PY
tar -C $w -czf $o/ab.tgz ab
