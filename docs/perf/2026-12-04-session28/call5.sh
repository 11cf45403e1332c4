#!/usr/bin/env bash
# Session 28, call 5 (device): the item split swept on the presets with shared prompts and mixed
# plans (b4aec6b's CLI: experiments 60 and 62), for the next refit of the cost model: does another
# split beat the model's on chunkattn-t3, flashinfer-cascade, gqa-llama3, spec-decode or hydragen-micro?
set -u
o=/tmp/call5; mkdir -p $o; cli=.device/final/chunktree
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
for t in default 0 256 1024 2048 4096 8192; do
  f=; [ $t = default ] || f="--split $t"
  for p in chunkattn-t3 flashinfer-cascade gqa-llama3 spec-decode hydragen-micro; do
    timeout 60 $cli bench --preset $p $f --csv $o/${p}_$t.csv > $o/${p}_$t.txt 2>&1 || echo "$p $t failed"
  done
done
date -u | tee -a $o/gpu.txt
python3 - $o <<'PY' | tee $o/sweep.md
import csv, glob, sys, os
o = sys.argv[1]; t = {}; chosen = {}
for f in glob.glob(o + "/*.csv"):
    split = os.path.basename(f)[:-4].rsplit("_", 1)[1]
    for r in csv.DictReader(open(f)):
        if r["impl"] != "chunktree": continue
        t.setdefault((r["preset"], r["case"]), {})[split] = float(r["median_us"])
        if split == "default": chosen[(r["preset"], r["case"])] = r["note"].split(",")[0].split()[1]
cols = ["default", "0", "256", "1024", "2048", "4096", "8192"]
print("| preset | case | model's split | " + " | ".join(cols) + " | best / default |")
print("|---" * (len(cols) + 4) + "|")
for k in sorted(t):
    best = min(v for c, v in t[k].items() if c != "default")
    print(f"| {k[0]} | {k[1]} | {chosen.get(k, '?')} | " + " | ".join(f"{t[k].get(c, float('nan')):.1f}" for c in cols) + f" | {best / t[k]['default']:.3f} |")
PY
tar czf $OUT/call5.tgz -C /tmp call5
