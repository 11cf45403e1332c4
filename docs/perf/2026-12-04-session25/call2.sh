#!/usr/bin/env bash
# Session 25, call 2 (device): experiment 54b (54 + the wgmma producer reading joined runs by boxes).
#  1. conditional_probe inside: a setter node's cost per launch (part 1 faulted the context in call 1).
#  2. The CLI: bench/compare.sh main / e54b / main again over every preset that has private or
#     wide shared parts (no-share, chunkattn-t3, small, spec-decode, shapes).
#  3. The engine path: bench/baselines.py's chunktree-paged rows with main's and e54b's cp312 wheels,
#     in alternation twice, over spec-decode, chunkattn-t3, no-share; torch SDPA once beside them.
#  4. The whole scripts/gpu-check (full grids included) on e54b's binaries.
set -u
o=/tmp/call2; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
timeout 60 .device/probe/conditional_probe inside > $o/probe.txt 2>&1; echo "probe rc $?"; cat $o/probe.txt
timeout 200 bench/compare.sh $o/ab main=.device/main/tools/chunktree e54b=.device/e54b/tools/chunktree \
  mainB=.device/main/tools/chunktree -- no-share chunkattn-t3 small spec-decode > $o/compare.log 2>&1
echo "compare rc $?"; cat $o/ab/compare.md
date -u | tee -a $o/gpu.txt
for b in main e54b; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site_$b .device/$b/wheel/*.whl > /dev/null 2>&1 || echo "pip $b failed"
done
cli=.device/e54b/tools/chunktree
cases=()
for p in spec-decode chunkattn-t3 no-share; do $cli bench --preset $p --cases-json $o/cases_$p.json > /dev/null 2>&1 && cases+=(--cases $o/cases_$p.json); done
$cli bench --preset small --ceilings-json $o/ceilings.json --csv $o/ceil_small.csv > /dev/null 2>&1
for round in 1 2; do
  for b in main e54b; do
    impl=chunktree-paged; [ $b$round = main1 ] && impl=chunktree-paged,sdpa
    PYTHONPATH=/tmp/site_$b timeout 90 python3 bench/baselines.py "${cases[@]}" --ceilings $o/ceilings.json --out $o/paged_${b}_$round.csv \
      --impl $impl > $o/paged_${b}_$round.txt 2>&1; echo "$b $round rc $?"
  done
done
python3 - $o <<'PY'
import csv, statistics, sys
o = sys.argv[1]
t = {}
for label in ("main", "e54b"):
    for round in (1, 2):
        for r in csv.DictReader(open(f"{o}/paged_{label}_{round}.csv")):
            if r["median_us"] and r["impl"] == "chunktree-paged":
                t.setdefault((r["preset"], r["case"]), {}).setdefault(label, []).append(float(r["median_us"]))
print("| preset | case | main µs (two rounds) | e54b µs | main / e54b |")
for (p, c), v in t.items():
    f = lambda l: "/".join(f"{x:.1f}" for x in v.get(l, []))
    print(f"| {p} | {c} | {f('main')} | {f('e54b')} | {statistics.mean(v['main']) / statistics.mean(v['e54b']):.3f} |")
PY
date -u | tee -a $o/gpu.txt
timeout 330 scripts/gpu-check --no-build --build-dir .device/e54b --work /tmp/gc > $o/gpu-check.txt 2>&1; echo "gpu-check rc $?"
tail -16 $o/gpu-check.txt
date -u | tee -a $o/gpu.txt
tar czf $OUT/call2.tgz -C /tmp call2
