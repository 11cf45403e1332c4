#!/usr/bin/env bash
# Session 53, call 5 (one call, since device starts were refused four times): experiment 91b (branch
# exp91 at a3edafc) against main 9880aed. (a) e91b's --strict quick grid and random trees; (b)
# `chunktree bench` no-share, chunkattn-t3 and small, main / e91b / main / e91b; (c) e91b's GPU unit
# suite; (d) a committed run of a3edafc (`.device/s53z`: its CLI, gzipped, and wheel, built from a clean
# tree; the same CLI as the A/B's e91b). Traces were left out: with them the call was over its size.
# Carry [".device/s53x" (main's CLI and e91b's GPU tests, xz), ".device/s53z", ".carry"].
# Prediction: KERNEL_NOTES session 53, experiments 91 and 91b.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p /tmp/m /tmp/e $OUT/ab
xz -dc .device/s53x/main.xz > /tmp/m/chunktree && gunzip -c .device/s53z/chunktree.gz > /tmp/e/chunktree && xz -dc .device/s53x/gpu_tests.xz > /tmp/e/gpu_tests && chmod +x /tmp/m/chunktree /tmp/e/chunktree /tmp/e/gpu_tests || exit 1
cli=/tmp/e/chunktree
$cli gentests --quick /tmp/q > /dev/null && $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null || exit 1
for g in q t; do
  timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/ab/check_$g.txt 2>&1
  echo "e91 check $g rc $?: $(grep -c ^PASSED $OUT/ab/check_$g.txt)/$(ls /tmp/$g/*.txt | wc -l)"
done
for pass in 1 2; do
  for b in m e; do
    for p in no-share chunkattn-t3 small; do
      timeout 60 /tmp/$b/chunktree bench --preset $p --csv $OUT/ab/${p}_${b}${pass}.csv > $OUT/ab/${p}_${b}${pass}.txt 2>&1 || echo "bench $p $b failed"
    done
  done
  echo "== pass $pass ($((SECONDS - start)) s)"
done
python3 - "$OUT/ab" <<'PY'
import csv, glob, os, sys, statistics
d = sys.argv[1]
def rows(pattern):
    out = {}
    for f in sorted(glob.glob(os.path.join(d, pattern))):
        for r in csv.DictReader(open(f)):
            out.setdefault((r["preset"], r["case"], r["impl"]), []).append((float(r["median_us"]), r.get("note", "")[:40]))
    return out
for label, pm, pe in [("presets", "[ncs]*_m?.csv", "[ncs]*_e?.csv")]:
    m, e = rows(pm), rows(pe)
    for k in sorted(m):
        if k in e and k[2] == "chunktree":
            mm = statistics.mean(v for v, _ in m[k]); ee = statistics.mean(v for v, _ in e[k])
            print(f"{label:10s} {k[0]:13s} {k[1]:16s} main {[v for v, _ in m[k]]} e91 {[v for v, _ in e[k]]} e91/main {ee / mm:.3f}  {m[k][0][1]} | {e[k][0][1]}")
PY
(cd $OUT && tar -czf ab.tgz ab && rm -rf ab)  # before the unit suite, in case the call's time runs out

timeout 110 /tmp/e/gpu_tests > $OUT/gpu_unit_e91b.txt 2>&1
echo "e91b gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure" $OUT/gpu_unit_e91b.txt | head -8
bench/committed_run.sh .device/s53z $OUT 330; echo "committed run rc $? ($((SECONDS - start)) s)"

date -u
