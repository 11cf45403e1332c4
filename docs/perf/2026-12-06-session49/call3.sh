#!/usr/bin/env bash
# Session 49, call 3: experiment 85 (branch exp85, 45dbbeb: a replayed mma.sync grid beside wgmma
# tiles deals its tiles to the CTAs on the SMs those leave free) against main (886272b), one machine:
# 1. replayed `chunktree bench` calls (graph rows, cold L2), main / e85 / main / e85: 256 sequences
#    on a 2048-token prompt with 16, 24, 32 and 48 own tokens, 128 with 16 and 24 (32 q / 8 kv heads,
#    d 128), and the presets spec-decode, tree and gqa-llama3;
# 2. the whole scripts/gpu-check of e85.
# Carry [".device/s49m", ".device/s49e85"]. Prediction: KERNEL_NOTES session 49, experiment 85.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
mkdir -p $OUT/ab
shapes=("b256_p2k_s16 256 16" "b256_p2k_s24 256 24" "b256_p2k_s32 256 32" "b256_p2k_s48 256 48" "b128_p2k_s16 128 16" "b128_p2k_s24 128 24")
for pass in main e85 main2 e852; do
  case $pass in main*) cli=.device/s49m/tools/chunktree ;; *) cli=.device/s49e85/tools/chunktree ;; esac
  csv=$OUT/ab/$pass.csv; rm -f $csv
  for shape in "${shapes[@]}"; do
    set -- $shape
    $cli bench --batch $2 --heads 32 --kv-heads 8 --dim 128 --prefix 2048 --suffix $3 --csv /tmp/s.csv > /dev/null 2>&1 || echo "bench $1 failed"
    [ -f $csv ] || head -1 /tmp/s.csv > $csv
    tail -n +2 /tmp/s.csv | sed "s/^custom,custom,/shapes,$1,/" >> $csv
  done
  for preset in spec-decode tree gqa-llama3; do
    $cli bench --preset $preset --csv /tmp/s.csv > /dev/null 2>&1 || echo "bench $preset failed"
    tail -n +2 /tmp/s.csv >> $csv
  done
  echo "== $pass done ($((SECONDS - start)) s)"
done
python3 - $OUT/ab <<'PY'
import csv, sys, statistics
d = sys.argv[1]
runs = {p: {(r['preset'], r['case'], r['impl']): float(r['median_us']) for r in csv.DictReader(open(f'{d}/{p}.csv')) if r['median_us']}
        for p in ('main', 'e85', 'main2', 'e852')}
print('| preset | case | impl | main | e85 | main | e85 | e85 / main (means) |')
print('|---|---|---|---|---|---|---|---|')
for k in runs['main']:
    if k[2] not in ('chunktree', 'chunktree-levels'): continue
    v = [runs[p].get(k, float('nan')) for p in ('main', 'e85', 'main2', 'e852')]
    print(f'| {k[0]} | {k[1]} | {k[2]} | ' + ' | '.join(f'{x:.1f}' for x in v) + f' | {(v[1] + v[3]) / (v[0] + v[2]):.3f} |')
PY
(cd $OUT && tar -czf ab.tgz ab && rm -rf ab)
timeout 300 scripts/gpu-check --no-build --build-dir .device/s49e85 --work /tmp/gc > $OUT/gpu_check_e85.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check_e85.txt
grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/gc/gpu-unit-tests.log | head -8
grep -B3 -A12 "ReplayedMmaSyncTilesDealt" /tmp/gc/gpu-unit-tests.log | grep -E "RUN|OK|FAILED|Failure" | head
date -u
