#!/usr/bin/env bash
# A candidate kernel build against main's, where the engine path's rows are the question: each row of
# session 44's cases (flashinfer-cascade, hydragen-micro, spec-decode) through bench/baselines.py
# --impl chunktree-paged as main, candidate, main again (the committed H200 run's ceilings; no peers,
# so no targets' evidence); compare.sh over the cache path's presets; then, if no compare.sh row of
# the candidate is more than 2 % slower than main's, the whole gpu-check of the candidate, in what is
# left of SECONDS. Everything lands in $OUT as tarballs (back even if the call is cut short).
# Usage: ab_paged.sh MAIN_DIR (wheel/, chunktree) CANDIDATE_DIR (wheel/, tools/, tests/) LABEL SECONDS
# (LABEL not ending in 2: main's second pass is main2).
set -u
start=$SECONDS
main_dir=$1 cand_dir=$2 label=$3 limit=$4
cases_dir=docs/perf/2026-12-06-session44
for b in main=$main_dir $label=$cand_dir; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ab_${b%%=*}/site ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/ab
for run in main $label main2; do
  PYTHONPATH=/tmp/ab_${run%2}/site timeout 120 python3 bench/baselines.py --cases $cases_dir/cases_flashinfer-cascade.json \
    --cases $cases_dir/cases_hydragen-micro.json --cases $cases_dir/cases_spec-decode.json \
    --ceilings docs/perf/2026-12-06-session44-run/ceilings.json --impl chunktree-paged --out $OUT/ab/paged_$run.csv > $OUT/ab/paged_$run.txt 2>&1
  echo "paged $run rc $? at $((SECONDS - start)) s"
done
python3 - $OUT/ab $label <<'PY'
import csv, sys
out, label = sys.argv[1], sys.argv[2]
runs = ("main", label, "main2")
t = {r: {(x["preset"], x["case"]): float(x["median_us"]) for x in csv.DictReader(open(f"{out}/paged_{r}.csv")) if x["median_us"]} for r in runs}
print(f"| case | main | {label} | main again | main / {label} | main / main again |")
for k, a in t["main"].items():
    b, c = t[label].get(k, float("nan")), t["main2"].get(k, float("nan"))
    print(f"| {k[0]} {k[1]} | {a:.1f} | {b:.1f} | {c:.1f} | {a / b:.3f} | {a / c:.3f} |")
PY
timeout 150 bench/compare.sh $OUT/ab/cache main=$main_dir/chunktree $label=$cand_dir/tools/chunktree -- chunkattn-t3 tree spec-decode > $OUT/ab/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/cache/compare.md
worst=$(awk -F'|' 'NR > 2 && $7 ~ /[0-9]/ {print $7}' $OUT/ab/cache/compare.md | sort -n | head -1)
echo "worst main/$label ratio: $worst"
(cd $OUT && tar -czf ab.tgz ab && rm -rf ab)
left=$((limit - 20 - (SECONDS - start)))
if [ $left -lt 240 ]; then
  echo "gpu-check not run: $left s left"
elif awk -v w="$worst" 'BEGIN {exit !(w >= 0.98)}'; then
  timeout $left scripts/gpu-check --no-build --build-dir $cand_dir --work /tmp/gc > $OUT/gpu_check.txt 2>&1
  echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
  mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
  (cd $OUT && tar -czf gc.tgz gpu_check.txt verbose && rm -rf gpu_check.txt verbose)
fi
