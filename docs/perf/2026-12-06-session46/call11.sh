#!/usr/bin/env bash
# Session 46, call 11: call 10's two doubts about experiment 81, measured again with each build twice
# in turn (main, e81, main, e81), then its gpu-check if neither holds:
# 1. the engine path's b512_p1k_s256 (call 10: e81 73.6 us median, p10 54.9, p90 90.7, against
#    main's 55.2 and 54.9): bench/baselines.py --impl chunktree-paged over session 44's hydragen-micro
#    cases;
# 2. the cache path's long compute-bound rows (call 10, one sample each: hydragen b4096_p8k_s0 218.7
#    -> 222.6 us): bench/compare.sh over hydragen-micro.
# Gate: e81's b512_p1k_s256 (paged) at most 3 % over main's, and its b4096_p8k_s0 (CLI) at most 1 %
# over main's (means of the two runs each). Carry [".device/s44m", ".device/s46e81"].
# Prediction: both doubts were the machine's spread (e81 within 1 % of main on both).
set -u
start=$SECONDS
limit=${1:-560}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s44m e81=.device/s46e81; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c11
cases=docs/perf/2026-12-06-session44
for run in main e81 main2 e812; do
  PYTHONPATH=/tmp/s_${run%2} timeout 60 python3 bench/baselines.py --cases $cases/cases_hydragen-micro.json \
    --ceilings docs/perf/2026-12-06-session44-run/ceilings.json --impl chunktree-paged --out $OUT/c11/paged_$run.csv > $OUT/c11/paged_$run.txt 2>&1
  echo "== paged $run rc $? ($((SECONDS - start)) s)"
done
timeout 200 bench/compare.sh $OUT/c11/cache main=.device/s44m/chunktree e81=.device/s46e81/tools/chunktree main2=.device/s44m/chunktree \
  e812=.device/s46e81/tools/chunktree -- hydragen-micro > $OUT/c11/compare.log 2>&1
echo "== compare rc $? ($((SECONDS - start)) s)"; cat $OUT/c11/cache/compare.md
gate=$(python3 - $OUT/c11 <<'PY'
import csv, sys
out = sys.argv[1]
def med(path, case, impl):
    return [float(r["median_us"]) for r in csv.DictReader(open(path)) if r["case"] == case and r["impl"] == impl]
paged = {r: med(f"{out}/paged_{r}.csv", "b512_p1k_s256", "chunktree-paged")[0] for r in ("main", "e81", "main2", "e812")}
cli = {r: med(f"{out}/cache/{r}.csv", "b4096_p8k_s0", "chunktree")[0] for r in ("main", "e81", "main2", "e812")}
print("paged b512_p1k_s256", paged, "cli b4096_p8k_s0", cli)
p = (paged["e81"] + paged["e812"]) / (paged["main"] + paged["main2"])
c = (cli["e81"] + cli["e812"]) / (cli["main"] + cli["main2"])
print(f"e81/main paged {p:.3f} cli {c:.3f}:", "open" if p <= 1.03 and c <= 1.01 else "shut")
PY
)
echo "$gate"
(cd $OUT && tar -czf c11.tgz c11 && rm -rf c11)
left=$((limit - 15 - (SECONDS - start)))
case $gate in
  *open)
    if [ $left -lt 200 ]; then echo "gpu-check not run: $left s left"; else
      timeout $left scripts/gpu-check --no-build --build-dir .device/s46e81 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
      echo "gpu-check rc $? ($((SECONDS - start)) s)"; tail -14 $OUT/gpu_check.txt
      mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
      (cd $OUT && tar -czf gc.tgz gpu_check.txt verbose && rm -rf gpu_check.txt verbose)
    fi ;;
esac
date -u
