#!/usr/bin/env bash
# Session 24, call 3 (device): experiment 53b (53 with the output index's batch-index load
# overlapping the flag's load) against main and 53.
#  1. The engine path: bench/baselines.py's chunktree-paged rows (graph replays of PagedAttention.run)
#     with main's cp312 wheel (.device/final, 051882e's src), e53's and e53b's, over no-share and
#     small, each build twice in alternation (main, e53, e53b, main, e53, e53b).
#  2. The CLI path (eager-loaded plans, which 53 does not change): bench/compare.sh main / e53b over
#     no-share, small and spec-decode.
#  3. The GPU unit tests on e53b.
set -u
o=/tmp/call3; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
for b in main:.device/final e53:.device/e53 e53b:.device/e53b; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site_${b%%:*} ${b#*:}/wheel/*.whl > /dev/null 2>&1 || echo "pip ${b%%:*} failed"
done
cli=.device/e53b/tools/chunktree
cases=()
for p in no-share small; do $cli bench --preset $p --cases-json $o/cases_$p.json > /dev/null 2>&1 && cases+=(--cases $o/cases_$p.json); done
$cli bench --preset small --ceilings-json $o/ceilings.json --csv $o/ceil_small.csv > /dev/null 2>&1
for round in 1 2; do
  for label in main e53 e53b; do
    PYTHONPATH=/tmp/site_$label timeout 60 python3 bench/baselines.py "${cases[@]}" --ceilings $o/ceilings.json --out $o/paged_${label}_$round.csv \
      --impl chunktree-paged > $o/paged_${label}_$round.txt 2>&1; echo "$label $round rc $?"
  done
done
date -u | tee -a $o/gpu.txt
python3 - $o <<'PY'
import csv, statistics, sys
o = sys.argv[1]
t = {}
for label in ("main", "e53", "e53b"):
    for round in (1, 2):
        for r in csv.DictReader(open(f"{o}/paged_{label}_{round}.csv")):
            if r["median_us"]: t.setdefault((r["preset"], r["case"]), {}).setdefault(label, []).append(float(r["median_us"]))
print("| preset | case | main µs (two rounds) | e53 | e53b | main / e53b |")
for (p, c), v in t.items():
    f = lambda l: "/".join(f"{x:.1f}" for x in v.get(l, []))
    m, e = statistics.mean(v["main"]), statistics.mean(v["e53b"])
    print(f"| {p} | {c} | {f('main')} | {f('e53')} | {f('e53b')} | {m / e:.3f} |")
PY
timeout 150 bench/compare.sh $o/ab main=.device/final/chunktree e53b=$cli -- no-share small spec-decode > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
timeout 150 .device/e53b/tests/chunktree_gpu_tests > $o/gpu-unit-tests.log 2>&1; echo "unit tests rc $?"; tail -1 $o/gpu-unit-tests.log
grep -E "^\[  FAILED" $o/gpu-unit-tests.log | head
date -u | tee -a $o/gpu.txt
tar czf $OUT/call3.tgz -C /tmp call3
