#!/usr/bin/env bash
# Session 24, call 2 (device): experiment 53 (replayed launches store the output straight from the
# states kernels when every row reads one item, read from the workspace at run time).
#  1. scripts/gpu-check --skip-full-grid on e53's binaries (.device/e53: tools/, tests/).
#  2. The engine path A/B: bench/baselines.py's chunktree-paged rows (CUDA-graph replays of
#     PagedAttention.run) with main's cp312 wheel (.device/final/wheel, 051882e's src) and with
#     e53's, over no-share, small, chunkattn-t3 and spec-decode; torch SDPA once beside them.
set -u
o=/tmp/call2; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
timeout 300 scripts/gpu-check --no-build --build-dir .device/e53 --work /tmp/gc --skip-full-grid > $o/gpu-check.txt 2>&1; echo "gpu-check rc $?"
tail -25 $o/gpu-check.txt
date -u | tee -a $o/gpu.txt
for b in main:.device/final e53:.device/e53; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site_${b%%:*} ${b#*:}/wheel/*.whl > /dev/null 2>&1 || echo "pip ${b%%:*} failed"
done
cli=.device/e53/tools/chunktree
cases=()
for p in no-share small chunkattn-t3 spec-decode; do $cli bench --preset $p --cases-json $o/cases_$p.json > /dev/null 2>&1 && cases+=(--cases $o/cases_$p.json); done
$cli bench --preset small --ceilings-json $o/ceilings.json --csv $o/ceil_small.csv > /dev/null 2>&1
PYTHONPATH=/tmp/site_main timeout 150 python3 bench/baselines.py "${cases[@]}" --ceilings $o/ceilings.json --out $o/paged_main.csv \
  --impl chunktree-paged,sdpa > $o/paged_main.txt 2>&1; echo "main rc $?"
PYTHONPATH=/tmp/site_e53 timeout 120 python3 bench/baselines.py "${cases[@]}" --ceilings $o/ceilings.json --out $o/paged_e53.csv \
  --impl chunktree-paged > $o/paged_e53.txt 2>&1; echo "e53 rc $?"
date -u | tee -a $o/gpu.txt
python3 - $o <<'PY'
import csv, sys
o = sys.argv[1]
t = {}
for label in ("main", "e53"):
    for r in csv.DictReader(open(f"{o}/paged_{label}.csv")):
        if r["median_us"]: t.setdefault((r["preset"], r["case"]), {})[label if r["impl"] == "chunktree-paged" else r["impl"]] = float(r["median_us"])
print("| preset | case | sdpa | paged main | paged e53 | main / e53 |")
for (p, c), v in t.items():
    m, e = v.get("main"), v.get("e53")
    print(f"| {p} | {c} | {v.get('sdpa', float('nan')):.1f} | {m or float('nan'):.1f} | {e or float('nan'):.1f} | {(m / e) if m and e else float('nan'):.3f} |")
PY
tar czf $OUT/call2.tgz -C /tmp call2
