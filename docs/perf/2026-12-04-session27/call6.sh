#!/usr/bin/env bash
# Session 27, call 6 (device): does another item split beat the cost model's on P4's rows and #11's
# half-private rows? chunktree bench (40c883d's CLI, kernels of f8fad90) on no-share and chunkattn-t3
# with the default split and with --split T.
set -u
o=/tmp/call6; mkdir -p $o; cli=.device/final/chunktree
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
for t in default 128 256 512 1024; do
  f=; [ $t = default ] || f="--split $t"
  for p in no-share chunkattn-t3; do timeout 40 $cli bench --preset $p $f --csv $o/${p}_$t.csv > $o/${p}_$t.txt 2>&1 || echo "$p $t failed"; done
done
date -u | tee -a $o/gpu.txt
python3 - $o <<'PY'
import csv, glob, sys, os
o = sys.argv[1]; t = {}
for f in glob.glob(o + "/*.csv"):
    split = os.path.basename(f)[:-4].rsplit("_", 1)[1]
    for r in csv.DictReader(open(f)):
        if r["impl"] == "chunktree": t.setdefault((r["preset"], r["case"]), {})[split] = float(r["median_us"])
cols = ["default", "128", "256", "512", "1024"]
print("| preset | case | " + " | ".join(cols) + " |")
for k in sorted(t): print(f"| {k[0]} | {k[1]} | " + " | ".join(f"{t[k].get(c, float('nan')):.1f}" for c in cols) + " |")
PY
tar czf $OUT/call6.tgz -C /tmp call6
