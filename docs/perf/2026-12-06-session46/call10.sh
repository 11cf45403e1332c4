#!/usr/bin/env bash
# Session 46, call 10: experiment 81 (branch exp81, 5f77e44: the wgmma producer's cp.async rest of a
# lead stage and its zero fill out of line) against main (.device/s44m), on one machine:
# 1. replay_modes.py (flushed / warm / code warm) on b512_p1k_s0 and p1k_b128_s0, main, e81, main;
# 2. the engine path (bench/baselines.py --impl chunktree-paged) over session 44's hydragen-micro and
#    flashinfer-cascade cases, main, e81, main;
# 3. bench/compare.sh main / e81 over hydragen-micro, flashinfer-cascade and small (the cache
#    path's wgmma rows, and rows without any).
# Carry [".device/s44m", ".device/s46e81"]. ~300 s.
# Prediction (written before the run): flushed, e81's wgmma kernel on b512_p1k_s0 -0.5 to -1 us
# (main 13.6, 77 12.1, code-warm main 12.2), p1k_b128_s0 -0.3 to -1; warm and code-warm unchanged
# (+-0.2); the cache path's short wgmma rows (hydragen s0, cascade p1k/p8k) -0.5 to -1 us, long rows
# and rows without wgmma tiles within +-1 %.
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session46
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s44m e81=.device/s46e81; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c10
for label in main e81 main; do
  for c in hydragen:b512_p1k_s0 cascade:p1k_b128_s0; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 $here/replay_modes.py docs/perf/2026-12-06-session45/cases_short_${c%%:*}.json ${c#*:} 16 2>&1 \
      | grep -v Warn | tee -a $OUT/c10/modes_$label.txt | grep span
  done
  echo "== modes $label ($((SECONDS - start)) s)"
done
cases=docs/perf/2026-12-06-session44
for run in main e81 main2; do
  PYTHONPATH=/tmp/s_${run%2} timeout 100 python3 bench/baselines.py --cases $cases/cases_flashinfer-cascade.json --cases $cases/cases_hydragen-micro.json \
    --ceilings docs/perf/2026-12-06-session44-run/ceilings.json --impl chunktree-paged --out $OUT/c10/paged_$run.csv > $OUT/c10/paged_$run.txt 2>&1
  echo "== paged $run rc $? ($((SECONDS - start)) s)"
done
python3 - $OUT/c10 <<'PY'
import csv, sys
out = sys.argv[1]
runs = ("main", "e81", "main2")
t = {r: {(x["preset"], x["case"]): float(x["median_us"]) for x in csv.DictReader(open(f"{out}/paged_{r}.csv")) if x["median_us"]} for r in runs}
print("| case | main | e81 | main again | main / e81 | main / main again |")
for k, a in t["main"].items():
    b, c = t["e81"].get(k, float("nan")), t["main2"].get(k, float("nan"))
    print(f"| {k[0]} {k[1]} | {a:.1f} | {b:.1f} | {c:.1f} | {a / b:.3f} | {a / c:.3f} |")
PY
timeout 200 bench/compare.sh $OUT/c10/cache main=.device/s44m/chunktree e81=.device/s46e81/tools/chunktree \
  -- hydragen-micro flashinfer-cascade small > $OUT/c10/compare.log 2>&1
echo "== compare rc $? ($((SECONDS - start)) s)"; cat $OUT/c10/cache/compare.md
(cd $OUT && tar -czf c10.tgz c10 && rm -rf c10)
date -u
