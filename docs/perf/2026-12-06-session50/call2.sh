#!/usr/bin/env bash
# Session 50, call 2: experiment 87 (branch exp87, 64489f9: up to eight kv heads paired on an mma.sync
# tile where the packed tiles still queue and an item has at most 8 query rows per kv head) against
# main (886272b's CLI and wheel in .device/s49r: 07b10f2 has the same kernels), one machine:
# 1. e87's GPU unit suite (its new ShortNarrowItemsPairKvHeads against the fp64 reference);
# 2. `chunktree bench` (graph rows, cold L2), main / e87 / main / e87: b256 on a 2048-token prompt with
#    8 and 24 own tokens (32 q / 8 kv heads, d 128), the presets spec-decode and flashinfer-cascade;
# 3. the engine path's replayed decode step (session 49's own_profile.py), main / e87 / main / e87:
#    OWN 0 (7-14 own tokens) and 14 (21-28) for b256_p2k.
# Carry [".device/s50e87", ".device/s49r", ".device/s50e87w"].
# Prediction: KERNEL_NOTES session 50, experiment 87.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/c2/ab
timeout 150 .device/s50e87/tests/chunktree_gpu_tests > $OUT/c2/gpu_unit_e87.txt 2>&1
echo "gpu unit rc $? ($((SECONDS - start)) s)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure" $OUT/c2/gpu_unit_e87.txt | head -12
grep -A3 "RUN .*ShortNarrowItemsPairKvHeads" $OUT/c2/gpu_unit_e87.txt | grep -E "OK|FAILED" | head -2
shapes=("b256_p2k_s8 256 8" "b256_p2k_s24 256 24")
for pass in main e87 main2 e872; do
  case $pass in main*) cli=.device/s49r/chunktree ;; *) cli=.device/s50e87/tools/chunktree ;; esac
  csv=$OUT/c2/ab/$pass.csv; rm -f $csv
  for shape in "${shapes[@]}"; do
    set -- $shape
    $cli bench --batch $2 --heads 32 --kv-heads 8 --dim 128 --prefix 2048 --suffix $3 --csv /tmp/s.csv > /dev/null 2>&1 || echo "bench $1 failed"
    [ -f $csv ] || head -1 /tmp/s.csv > $csv
    tail -n +2 /tmp/s.csv | sed "s/^custom,custom,/shapes,$1,/" >> $csv
  done
  for preset in spec-decode flashinfer-cascade; do
    $cli bench --preset $preset --csv /tmp/s.csv > /dev/null 2>&1 || echo "bench $preset failed"
    tail -n +2 /tmp/s.csv >> $csv
  done
  echo "== $pass done ($((SECONDS - start)) s)"
done
python3 - $OUT/c2/ab <<'PY'
import csv, sys
d = sys.argv[1]
passes = ('main', 'e87', 'main2', 'e872')
runs = {p: {(r['preset'], r['case'], r['impl']): float(r['median_us']) for r in csv.DictReader(open(f'{d}/{p}.csv')) if r['median_us']}
        for p in passes}
print('| preset | case | impl | main | e87 | main | e87 | e87 / main (means) |')
print('|---|---|---|---|---|---|---|---|')
for k in runs['main']:
    if k[2] not in ('chunktree', 'chunktree-levels'): continue
    v = [runs[p].get(k, float('nan')) for p in passes]
    print(f'| {k[0]} | {k[1]} | {k[2]} | ' + ' | '.join(f'{x:.1f}' for x in v) + f' | {(v[1] + v[3]) / (v[0] + v[2]):.3f} |')
PY
for b in main=.device/s49r e87=.device/s50e87w; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
for label in main e87 main e87; do
  for own in 0 14; do
    PYTHONPATH=/tmp/w_$label timeout 60 python3 docs/perf/2026-12-06-session49/own_profile.py $own b256_p2k >> $OUT/c2/own${own}_$label.txt 2>&1 || echo "own_profile $label $own failed"
  done
  echo "== $label ($((SECONDS - start)) s)"
done
for f in $OUT/c2/own*_*.txt; do echo "$(basename $f):"; grep "replay span" $f | cut -c1-175; done
(cd $OUT && tar -czf c2.tgz c2 && rm -rf c2)
date -u
