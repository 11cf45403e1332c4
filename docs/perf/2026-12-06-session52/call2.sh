#!/usr/bin/env bash
# Session 52, call 2: experiment 90 (branch exp90, 00ed4a3: long narrow items packed four kv heads a
# tile where that makes one round) against main 9880aed. (a) e90's --strict quick grid and random
# trees; (b) `chunktree bench` no-share and chunkattn-t3, main / e90 / main / e90; (c) the MHA shapes
# at --split 0; (d) e90's GPU unit suite (last: device time is short). Carry [".device/s52z", ".device/s52e90"].
# Prediction: KERNEL_NOTES session 52, experiment 90.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p /tmp/m /tmp/e $OUT/ab
gunzip -c .device/s52z/chunktree.gz > /tmp/m/chunktree && gunzip -c .device/s52e90/chunktree.gz > /tmp/e/chunktree &&
  gunzip -c .device/s52e90/chunktree_gpu_tests.gz > /tmp/e/gpu_tests && chmod +x /tmp/m/chunktree /tmp/e/chunktree /tmp/e/gpu_tests || exit 1
cli=/tmp/e/chunktree
$cli gentests --quick /tmp/q > /dev/null && $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null || exit 1
for g in q t; do
  timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/ab/check_$g.txt 2>&1
  echo "e90 check $g rc $?: $(grep -c ^PASSED $OUT/ab/check_$g.txt)/$(ls /tmp/$g/*.txt | wc -l)"
done
for pass in 1 2; do
  for b in m e; do
    for p in no-share chunkattn-t3; do
      timeout 60 /tmp/$b/chunktree bench --preset $p --csv $OUT/ab/${p}_${b}${pass}.csv > $OUT/ab/${p}_${b}${pass}.txt 2>&1 || echo "bench $p $b failed"
    done
    for s in 1024 4096; do
      timeout 30 /tmp/$b/chunktree bench --batch 32 --heads 32 --kv-heads 32 --suffix $s --split 0 --csv $OUT/ab/split0_${s}_${b}${pass}.csv > /dev/null 2>&1 || echo "split0 $s $b failed"
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
for label, pm, pe in [("presets", "[nc]*_m?.csv", "[nc]*_e?.csv"),
                      ("split0 1k", "split0_1024_m?.csv", "split0_1024_e?.csv"), ("split0 4k", "split0_4096_m?.csv", "split0_4096_e?.csv")]:
    m, e = rows(pm), rows(pe)
    for k in sorted(m):
        if k in e and k[2] == "chunktree":
            mm = statistics.mean(v for v, _ in m[k]); ee = statistics.mean(v for v, _ in e[k])
            print(f"{label:10s} {k[0]:13s} {k[1]:16s} main {[v for v, _ in m[k]]} e90 {[v for v, _ in e[k]]} e90/main {ee / mm:.3f}  {m[k][0][1]} | {e[k][0][1]}")
PY
(cd $OUT && tar -czf ab.tgz ab && rm -rf ab)  # before the unit suite, in case the call's time runs out
timeout 120 /tmp/e/gpu_tests > $OUT/gpu_unit_e90.txt 2>&1
echo "e90 gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure" $OUT/gpu_unit_e90.txt | head -12
date -u
