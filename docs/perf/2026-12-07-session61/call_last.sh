#!/usr/bin/env bash
# Session 61's last call (written before it ran). On an H200: the committed run of main's code
# (`.device/s60m`: exp104m 3d978d2's CLI, GPU tests and wheel; main 8121633 has the same source), the
# first on an H200 since session 44's; then the k sweep below while time is left. On an H100: the k
# sweep only (the committed run on an H100 is call 2's). The k sweep times seven rows of spec-decode
# and hydragen-micro with the probe build (`.device/s61p`: branch probe106, main plus
# CHUNKTREE_PROBE_WGMMA_SMS) at the model's k, at no partition (0) and at fixed k, for a refit of the
# partition's price on the merged claims and chained launch (KERNEL_NOTES session 61).
# Carry [".device/s60m", ".carry", ".device/s61p"]. CALL_S: seconds this script may take.
start=$(date +%s)
call_s=${CALL_S:-480}
left() { echo $((call_s - ($(date +%s) - start))); }
card=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
echo "$card"; date -u
case "$card" in
  *H200*) bash bench/committed_run.sh .device/s60m "$OUT/run" 400 --full-grids ;;
esac
x=/tmp/x61k && rm -rf "$x" && mkdir -p "$x" && gunzip -c .device/s61p/chunktree.gz > "$x/probe" && chmod +x "$x/probe" || exit 1
cat > "$x/shapes.txt" <<'ROWS'
spec_b256_mha_s264 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 4096 --suffix 264 --queries 8
spec_b64_mha_s264 --batch 64 --heads 32 --kv-heads 32 --dim 128 --prefix 4096 --suffix 264 --queries 8
spec_b256_gqa_s264 --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 4096 --suffix 264 --queries 8
spec_b256_mha_s8 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 4096 --suffix 8 --queries 8
hyd_b4096_p8k_s512 --batch 4096 --heads 8 --kv-heads 1 --dim 128 --prefix 8192 --suffix 512
hyd_b2048_p4k_s512 --batch 2048 --heads 8 --kv-heads 1 --dim 128 --prefix 4096 --suffix 512
hyd_b4096_p8k_s256 --batch 4096 --heads 8 --kv-heads 1 --dim 128 --prefix 8192 --suffix 256
ROWS
ks="model 0 52 60 66 72 76 80 86 96"
for k in $ks; do
  { echo '#!/bin/sh'; echo 'export CHUNKTREE_PROBE_LOG=1'; [ "$k" = model ] || echo "export CHUNKTREE_PROBE_WGMMA_SMS=$k"; echo "exec $x/probe \"\$@\""; } > "$x/k$k"
  chmod +x "$x/k$k"
done
mkdir -p "$OUT/ksweep"
for pass in 1 2; do
  order=$ks; [ $pass = 2 ] && order=$(echo $ks | tr ' ' '\n' | tac | tr '\n' ' ')
  for k in $order; do
    [ "$(left)" -gt 30 ] || { echo "k sweep: stopped before pass $pass k $k ($(left) s left)"; break 2; }
    SHAPES=$x/shapes.txt bench/compare.sh "$OUT/ksweep/p$pass/k$k" "k$k=$x/k$k" -- > /dev/null 2>&1
  done
done
python3 - "$OUT/ksweep" $ks <<'PY'
import csv, glob, os, sys, statistics
root, ks = sys.argv[1], sys.argv[2:]
t, floors, logs = {}, {}, {}
for path in sorted(glob.glob(f"{root}/p*/k*/k*.csv")):
    k = os.path.basename(path)[1:-4]
    for r in csv.DictReader(open(path)):
        if r["impl"] == "chunktree" and r["median_us"]:
            t.setdefault(r["case"], {}).setdefault(k, []).append(float(r["median_us"]))
            floors[r["case"]] = float(r["floor_us"])
print("| case | floor µs | " + " | ".join(f"k {k}" for k in ks) + " |")
print("|---" * (2 + len(ks)) + "|")
for case, by_k in t.items():
    cells = [" / ".join(f"{v:.1f}" for v in by_k[k]) if k in by_k else "—" for k in ks]
    print(f"| {case} | {floors[case]:.1f} | " + " | ".join(cells) + " |")
PY
grep -h "^probe:" "$OUT"/ksweep/p1/kmodel/kmodel.txt 2>/dev/null | sort -u
tar -C "$OUT" -czf "$OUT/ksweep.tgz" ksweep && rm -rf "$OUT/ksweep"; date -u
