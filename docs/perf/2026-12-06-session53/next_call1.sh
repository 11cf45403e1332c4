#!/usr/bin/env bash
# For session 54's first call (prepared in session 53, not run): experiments 91, 91b and 92 against
# main 9880aed in one call, on whatever card comes. `.device/s54` holds what session 53 built:
# main.xz (9880aed's CLI), e91.gz (01857aa), e91b.gz (a3edafc), e92.gz (d6929d5; branch exp92 is at bc61afc, the same code but comments) and
# e92_gpu_tests.xz, and trace builds of main, e91b and e92. If the machine is fresh, rebuild them
# from the patches in this folder. Carry [".device/s54"] (~9 MB; no FlashInfer bundle needed).
# (a) e92's --strict grids; (b) `chunktree bench` no-share, chunkattn-t3 and small, main / e91 /
# e91b / e92, twice; (c) e92's GPU unit suite; (d) traces: P4's 1k rows on e92, and the fully
# shared np1024_ns1024 on main, e91b and e92 (where 91 and 91b lost 1-5 %).
# Predictions: KERNEL_NOTES session 53, experiment 92.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p /tmp/x $OUT/ab $OUT/tr
xz -dc .device/s54/main.xz > /tmp/x/main && xz -dc .device/s54/e92_gpu_tests.xz > /tmp/x/e92_tests || exit 1
for b in e91 e91b e92 e92_trace e91b_trace main_trace; do gunzip -c .device/s54/$b.gz > /tmp/x/$b || exit 1; done
chmod +x /tmp/x/*
/tmp/x/e92 gentests --quick /tmp/q > /dev/null && /tmp/x/e92 gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null || exit 1
for g in q t; do
  timeout 40 /tmp/x/e92 check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/ab/check_$g.txt 2>&1
  echo "e92 check $g rc $?: $(grep -c ^PASSED $OUT/ab/check_$g.txt)/$(ls /tmp/$g/*.txt | wc -l)"
done
for pass in 1 2; do
  for b in main e91 e91b e92; do
    for p in no-share chunkattn-t3 small; do
      timeout 60 /tmp/x/$b bench --preset $p --csv $OUT/ab/${p}_${b}_${pass}.csv > /dev/null 2>&1 || echo "bench $p $b failed"
    done
  done
  echo "== pass $pass ($((SECONDS - start)) s)"
done
python3 - "$OUT/ab" <<'PY'
import csv, glob, os, sys, statistics
d = sys.argv[1]
runs = {}
for f in glob.glob(os.path.join(d, "*_*_[12].csv")):
    build = os.path.basename(f).rsplit("_", 2)[1]
    for r in csv.DictReader(open(f)):
        if r["impl"] == "chunktree":
            runs.setdefault((r["preset"], r["case"]), {}).setdefault(build, []).append(float(r["median_us"]))
for key in sorted(runs):
    m = statistics.mean(runs[key]["main"])
    print(f"{key[0]:13s} {key[1]:16s} main {m:8.2f}  " + "  ".join(f"{b} {statistics.mean(runs[key][b]) / m:.3f}" for b in ("e91", "e91b", "e92")))
PY
(cd $OUT && tar -czf ab.tgz ab && rm -rf ab)
timeout 110 /tmp/x/e92_tests > $OUT/gpu_unit_e92.txt 2>&1; echo "e92 gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" $OUT/gpu_unit_e92.txt | head -6
trace() {  # name cli args...
  local name=$1 cli=$2; shift 2
  CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 $cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: trace rc $?"
  echo "== $name"; python3 bench/tile_trace.py $OUT/tr/$name.csv | tail -5
}
trace e92_b32_mha_1k /tmp/x/e92_trace --batch 32 --heads 32 --kv-heads 32 --suffix 1024
trace e92_b512_gqa8x1_1k /tmp/x/e92_trace --batch 512 --heads 8 --kv-heads 1 --suffix 1024
for b in main e91b e92; do trace ${b}_np1024_ns1024 /tmp/x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --prefix 1024 --suffix 0; done
(cd $OUT && tar -czf tr.tgz tr && rm -rf tr)
date -u
