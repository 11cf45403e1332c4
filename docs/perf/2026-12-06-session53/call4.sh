#!/usr/bin/env bash
# Session 53, call 4: experiment 91b (branch exp91 at 91b: 91, and the Q copy looks up each warp's rows once
# and passes them by shuffles) against main 9880aed. (a) e91's --strict quick grid and
# random trees; (b) `chunktree bench` no-share, chunkattn-t3 and small, main / e91 / main / e91; (c) traces of
# e91 (b32_mha_1k, b512_gqa8x1_1k); (d) the whole scripts/gpu-check of e91b. Carry [".device/s52z", ".device/s53f"].
# Prediction: KERNEL_NOTES session 53, experiment 91.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p /tmp/m /tmp/e $OUT/ab
gunzip -c .device/s52z/chunktree.gz > /tmp/m/chunktree && cp .device/s53f/tools/chunktree /tmp/e/chunktree && chmod +x /tmp/m/chunktree /tmp/e/chunktree || exit 1
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
mkdir -p $OUT/tr && gunzip -c .device/s53f/trace.gz > /tmp/e/trace && chmod +x /tmp/e/trace
for shape in "b32_mha_1k 32 32 32" "b512_gqa8x1_1k 512 8 1"; do
  set -- $shape
  CHUNKTREE_TILE_TRACE=$OUT/tr/$1.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 /tmp/e/trace bench --repeats 5 \
    --batch $2 --heads $3 --kv-heads $4 --suffix 1024 > $OUT/tr/$1_bench.txt 2>&1 || echo "$1: trace rc $?"
  python3 bench/tile_trace.py $OUT/tr/$1.csv | tail -4
done
(cd $OUT && tar -czf tr.tgz tr && rm -rf tr)
scripts/gpu-check --no-build --build-dir .device/s53f --work /tmp/gc4 > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? ($((SECONDS - start)) s)"; tail -14 $OUT/gpu_check.txt
date -u
