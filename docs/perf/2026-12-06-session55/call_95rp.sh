#!/usr/bin/env bash
# Session 55: experiment 95's sweep and 95r's model in one call. `.device/s55d/e95rp.gz` is branch
# exp95rp at 9b2e97e (exp95r, the partition chosen by cost_model::wgmma_sms, plus CHUNKTREE_PROBE_WGMMA_SMS=k to
# override the model's k, 0 = no partition = main's behaviour). Settings: model (unset), 0, 40, 52,
# 66, 80 on spec-decode, hydragen-micro and gqa-llama3, twice in opposite orders; CHUNKTREE_PROBE_LOG
# records each plan's partition (b2b27c0, which session 55's call ran, printed it only where the tile
# counts changed). Then exp95rp's GPU unit tests and --strict grids with the model's
# partitions, in what time is left. Carry [".device/s55d"]. Predictions: KERNEL_NOTES 95 and 95r.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x95rp && S=/tmp/s95rp/sweep && rm -rf $x /tmp/s95rp && mkdir -p $x/tools $x/tests $S /tmp/s95rp/ck
# SWEEP_BUILD (default .device/s55d) holds the CLI as e95rp.gz or e95rp.xz, and the GPU tests as
# e95rp_gpu_tests.xz where the call has room for them; without them no checks run.
b=${SWEEP_BUILD:-.device/s55d}
if [ -f $b/e95rp.xz ]; then xz -dc $b/e95rp.xz; else gunzip -c $b/e95rp.gz; fi > $x/tools/chunktree && chmod +x $x/tools/chunktree || exit 1
[ -f $b/e95rp_gpu_tests.xz ] && xz -dc $b/e95rp_gpu_tests.xz > $x/tests/chunktree_gpu_tests && chmod +x $x/tests/chunktree_gpu_tests
# Packed after every run, so that a call cut short by its limit still brings back what it measured.
pack() { tar -C /tmp/s95rp -czf $OUT/sweep.tgz sweep ck; }
trap 'pack; date -u' EXIT
settings=(${SETTINGS:-model 0 52 66 80 40})  # SETTINGS="..." for fewer
# Each preset's two passes (the second in the opposite order) before the next preset's: spec-decode,
# whose s264 rows the partition is for, first.
for preset in spec-decode hydragen-micro gqa-llama3; do
  for pass in 1 2; do
    order=("${settings[@]}"); [ $pass = 2 ] && order=($(printf '%s\n' "${settings[@]}" | tac))
    for k in "${order[@]}"; do
      [ $((SECONDS - start)) -gt ${SWEEP_S:-420} ] && break 3
      if [ $k = model ]; then env=(CHUNKTREE_PROBE_LOG=1); else env=(CHUNKTREE_PROBE_LOG=1 CHUNKTREE_PROBE_WGMMA_SMS=$k); fi
      env "${env[@]}" timeout 60 $x/tools/chunktree bench --preset $preset --csv $S/${preset}_k${k}_p$pass.csv > $S/${preset}_k${k}_p$pass.txt 2>&1 || echo "$preset k $k pass $pass failed"
      pack
    done
  done
  echo "== $preset done ($((SECONDS - start)) s)"
done
python3 - "$S" <<'PY'
import csv, glob, os, re, sys, statistics
times = {}
for path in glob.glob(os.path.join(sys.argv[1], "*_p[12].csv")):
    k = re.search(r"_k(\w+)_p", path).group(1)
    for r in csv.DictReader(open(path)):
        if r["impl"] == "chunktree" and r["median_us"]:
            times.setdefault((r["preset"], r["case"]), {}).setdefault(k, []).append(float(r["median_us"]))
ks = sorted({k for v in times.values() for k in v}, key=lambda k: (k == "model", int(k) if k.isdigit() else 0))  # the settings run
print("| preset | case | " + " | ".join(f"k {k}" for k in ks) + " | best / k 0 | model / k 0 |")
for (preset, case), by_k in sorted(times.items()):
    med = {k: statistics.median(v) for k, v in by_k.items()}
    if "0" not in med: continue
    cells = " | ".join(f"{med[k]:.1f}" if k in med else "-" for k in ks)
    model = f"{med['model'] / med['0']:.3f}" if "model" in med else "-"
    print(f"| {preset} | {case} | {cells} | {min(med.values()) / med['0']:.3f} | {model} |")
PY
grep -h "^probe:" $S/*_kmodel_p1.txt | sort | uniq -c | head -40
left=$((${CALL_S:-570} - (SECONDS - start)))
[ $left -gt 30 ] && [ -x $x/tests/chunktree_gpu_tests ] && timeout $left scripts/gpu-check --no-build --build-dir $x --work /tmp/gc95rp --only gpu-unit-tests,quick-grid,random-trees > /tmp/s95rp/ck/gpu_check.txt 2>&1
echo "e95rp checks rc $?"; cp /tmp/gc95rp/*.log /tmp/s95rp/ck/ 2>/dev/null; grep -A6 "gpu-check summary" /tmp/s95rp/ck/gpu_check.txt || tail -5 /tmp/s95rp/ck/gpu_check.txt
