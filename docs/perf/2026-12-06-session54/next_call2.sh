#!/usr/bin/env bash
# For session 55 (prepared in session 54, not run): experiment 95's probe. `.device/s55b/e95.gz` is
# main ad73297 plus CHUNKTREE_PROBE_WGMMA_SMS (branch exp95, 4c82736): with k set, a call whose plan
# has both tile kinds runs its wgmma tiles on a persistent grid of k CTAs (one an SM) and its mma.sync
# tiles on a persistent grid that fills the other SMs, so the private tiles stream while the shared
# ones compute; unset, it is main. The sweep: spec-decode, hydragen-micro and gqa-llama3 at k = 0
# (main), 40, 52, 66, 80 and 100, each preset's k values one after the other, twice in opposite
# orders; then traces at k = 0 and 60 (`.device/s55b/e95_trace.gz`). Carry [".device/s55b"]. Prediction: KERNEL_NOTES session 54, experiment 95.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x95 && rm -rf $x && mkdir -p $x $OUT/sweep && gunzip -c .device/s55b/e95.gz > $x/chunktree && chmod +x $x/chunktree || exit 1
trap 'cd $OUT && tar -czf sweep.tgz sweep && rm -rf sweep; date -u' EXIT
ks=(0 40 52 66 80 100)
for pass in 1 2; do
  [ $pass = 2 ] && ks=($(printf '%s\n' "${ks[@]}" | tac))
  for preset in spec-decode hydragen-micro gqa-llama3; do
    for k in "${ks[@]}"; do
      [ $((SECONDS - start)) -gt ${CALL_BUDGET_S:-480} ] && break 3
      CHUNKTREE_PROBE_WGMMA_SMS=$k timeout 60 $x/chunktree bench --preset $preset --csv $OUT/sweep/${preset}_k${k}_p$pass.csv > $OUT/sweep/${preset}_k${k}_p$pass.txt 2>&1 || echo "$preset k $k pass $pass failed"
    done
  done
  echo "== pass $pass done ($((SECONDS - start)) s)"
done
# Whether the partition holds: traces of b256_mha_p4k_s264_q8 at k = 0 and 60 (the wgmma tiles on
# k distinct SMs from t = 0, the mma.sync CTAs starting at t = 0 too).
gunzip -c .device/s55b/e95_trace.gz > $x/trace && chmod +x $x/trace
for k in 0 60; do
  CHUNKTREE_PROBE_WGMMA_SMS=$k CHUNKTREE_TILE_TRACE=$OUT/sweep/trace_k$k.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 $x/trace bench --repeats 5 \
    --batch 256 --heads 32 --kv-heads 32 --prefix 4096 --suffix 264 --queries 8 > $OUT/sweep/trace_k${k}_bench.txt 2>&1 || echo "trace k $k failed"
  echo "== trace k $k"; python3 bench/tile_trace.py $OUT/sweep/trace_k$k.csv $OUT/sweep/trace_k$k.csv.wgmma | grep -E "tiles, the first|CTAs (start|finish)"
  python3 -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print('wgmma tiles on', len({x['sm'] for x in r}), 'SMs')" $OUT/sweep/trace_k$k.csv.wgmma
done
python3 - "$OUT/sweep" <<'PY'
import csv, glob, os, re, sys, statistics
times = {}
for path in glob.glob(os.path.join(sys.argv[1], "*_p[12].csv")):
    k = int(re.search(r"_k(\d+)_p", path).group(1))
    for r in csv.DictReader(open(path)):
        if r["impl"] == "chunktree" and r["median_us"]:
            times.setdefault((r["preset"], r["case"]), {}).setdefault(k, []).append(float(r["median_us"]))
ks = sorted({k for v in times.values() for k in v})
print("| preset | case | " + " | ".join(f"k {k}" for k in ks) + " | best / main |")
for (preset, case), by_k in sorted(times.items()):
    med = {k: statistics.median(v) for k, v in by_k.items()}
    best = min(med.values())
    print(f"| {preset} | {case} | " + " | ".join(f"{med[k]:.1f}" if k in med else "-" for k in ks) + f" | {best / med[0]:.3f} |" if 0 in med else "")
PY
