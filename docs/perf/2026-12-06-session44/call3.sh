#!/usr/bin/env bash
# Session 44, call 3: experiment 79g (branch exp79g: the first stage past the item's first run issues
# that run's part before the window loads) in .device/s44g beside main (.device/s44m: 6a485c1's
# code, the committed run's build). The engine path's rows that 79c-79f made slower (fully shared
# short prompts, NHD pages of 64) and controls, through bench/baselines.py --impl chunktree-paged,
# as main, e79g, main again (the committed run's ceilings); then compare.sh over the cache path's
# presets; then, if no row of e79g is more than 2 % slower than main's, the whole gpu-check of e79g.
# Carry [".device/s44g", ".device/s44m"]. Prediction: KERNEL_NOTES session 44 (79g).
set -u
start=$SECONDS
limit=${1:-600}
here=docs/perf/2026-12-06-session44
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s44m e79g=.device/s44g; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ab_${b%%=*}/site ${b#*=}/wheel/*.whl || exit 1
done
cases=(--cases $here/cases_flashinfer-cascade.json --cases $here/cases_hydragen-micro.json --cases $here/cases_spec-decode.json)
for label in main e79g main2; do
  PYTHONPATH=/tmp/ab_${label%2}/site timeout 120 python3 bench/baselines.py "${cases[@]}" --ceilings docs/perf/2026-12-06-session44-run/ceilings.json \
    --impl chunktree-paged --out $OUT/paged_$label.csv > $OUT/paged_$label.txt 2>&1
  echo "paged $label rc $? at $((SECONDS - start)) s"
done
python3 - $OUT <<'PY'
import csv, sys
out = sys.argv[1]
t = {l: {(r["preset"], r["case"]): float(r["median_us"]) for r in csv.DictReader(open(f"{out}/paged_{l}.csv")) if r["median_us"]} for l in ("main", "e79g", "main2")}
print("| case | main | e79g | main2 | main / e79g | main / main2 |")
for k in t["main"]:
    a, b, c = t["main"][k], t["e79g"].get(k, float("nan")), t["main2"].get(k, float("nan"))
    print(f"| {k[0]} {k[1]} | {a:.1f} | {b:.1f} | {c:.1f} | {a / b:.3f} | {a / c:.3f} |")
PY
timeout 150 bench/compare.sh $OUT/ab main=.device/s44m/chunktree e79g=.device/s44g/tools/chunktree -- chunkattn-t3 tree spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
worst=$(awk -F'|' 'NR > 2 && $7 ~ /[0-9]/ {print $7}' $OUT/ab/compare.md | sort -n | head -1)
echo "worst main/e79g ratio: $worst"
(cd $OUT && tar -czf /tmp/ab_part.tgz . && rm -rf ./* && mv /tmp/ab_part.tgz $OUT/)  # back even if the call is cut short
if awk -v w="$worst" 'BEGIN {exit !(w >= 0.98)}'; then
  left=$((limit - 20 - (SECONDS - start)))
  timeout $left scripts/gpu-check --no-build --build-dir .device/s44g --work /tmp/gc > $OUT/gpu_check.txt 2>&1
  echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
  mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
  (cd $OUT && tar -czf /tmp/gc.tgz gpu_check.txt verbose && rm -rf gpu_check.txt verbose && mv /tmp/gc.tgz $OUT/)
fi
date -u
