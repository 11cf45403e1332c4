#!/usr/bin/env bash
# Session 24, call 1 (device).
#  1. Is P4's gap the pools' layout? The no-share rows through the engine-facing PagedAttention over
#     the same pages in three layouts (NHD; HND = the prefix cache's [chunk][kv head][C][d]; HMD =
#     each kv head's pages contiguous, as SDPA's [b, h, s, d] is read), torch SDPA in the same
#     process. Main's code (cp312 wheel of 051882e's src in .device/final).
#  2. Experiment 52 (the pending tile's Q rows prefetched into L2) against main's CLI: bench/compare.sh
#     over no-share, chunkattn-t3, small; then the GPU unit tests on e52.
set -u
x=.device/final; o=/tmp/call1; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
$x/chunktree bench --preset no-share --csv $o/cli.csv --ceilings-json $o/ceilings.json > $o/cli.txt 2>&1; echo "cli rc $?"
$x/chunktree bench --preset no-share --cases-json $o/cases.json > /dev/null 2>&1
timeout 200 python3 bench/baselines.py --cases $o/cases.json --ceilings $o/ceilings.json --out $o/paged.csv \
  --impl sdpa,chunktree-paged-hnd,chunktree-paged-hmd,chunktree-paged > $o/paged.txt 2>&1; echo "baselines rc $?"
date -u | tee -a $o/gpu.txt
python3 - $o <<'PY'
import csv, sys
o = sys.argv[1]
rows = [r for f in ("cli.csv", "paged.csv") for r in csv.DictReader(open(f"{o}/{f}"))]
for r in rows:
    if r["median_us"]: print(f'{r["case"]:16s} {r["impl"]:22s} {float(r["median_us"]):8.1f} floor {float(r["floor_us"]):7.1f}')
PY
timeout 200 bench/compare.sh $o/ab main=$x/chunktree e52=.device/e52/chunktree -- no-share chunkattn-t3 small > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
timeout 150 .device/e52/chunktree_gpu_tests > $o/gpu-unit-tests.log 2>&1; echo "unit tests rc $?"; tail -1 $o/gpu-unit-tests.log
grep -E "^\[  FAILED" $o/gpu-unit-tests.log | head
date -u | tee -a $o/gpu.txt
tar czf $OUT/call1.tgz -C /tmp call1
