#!/usr/bin/env bash
# Session 48, call 5: where 84b's +4.7 % in random page order comes from (call 4: the consumers wait
# longer on full stages; the producer executes 21 % more instructions, among them a runtime division,
# 128 / page tokens, in every stage's check). Wheels, one machine:
#   main (.device/s47m), e84b (.device/s48e84bw),
#   e84d (exp84d, dae1a27: 84b with the stage's page count carried by the maps, no division),
#   e84off (a diagnostic build of 84d whose page maps are never made, exp84off.diagnostic.patch: every
#   stage's check ends at its first test, as on the cache path).
# 1. page_order_profile.py 16 random b64_p4k b256_p2k: main e84b e84d e84off main e84d e84off;
# 2. the same, consecutive: e84d main e84d;
# 3. 84d's GPU unit tests.
# Carry [".device/s47m", ".device/s48e84bw", ".device/s48e84d", ".device/s48e84off"]. Prediction
# (written before the run): e84off within ±1 % of main in random order if the check is the cost (if
# not, the cost is the code's shape, not its work); e84d between e84b and e84off (the division is
# ~20 of the check's ~60 instructions); consecutive e84d as e84b (20.1 / 23.9 µs a layer).
set -u
start=$SECONDS
s48=docs/perf/2026-12-06-session48
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e84b=.device/s48e84bw e84d=.device/s48e84d e84off=.device/s48e84off; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c5
for run in main:random e84b:random e84d:random e84off:random main:random e84d:random e84off:random e84d:consecutive main:consecutive e84d:consecutive; do
  label=${run%%:*} order=${run#*:}
  PYTHONPATH=/tmp/w_$label timeout 40 python3 $s48/page_order_profile.py 16 $order b64_p4k b256_p2k >> $OUT/c5/page16_${order}_$label.txt 2>&1
  echo "== $label $order rc $? ($((SECONDS - start)) s)"; grep "replay span" $OUT/c5/page16_${order}_$label.txt | tail -2 | sed 's/void at::native::index_elementwise_kerne/index/'
done
timeout 150 .device/s48e84d/tests/chunktree_gpu_tests > $OUT/c5/gpu_unit_84d.txt 2>&1
echo "gpu unit 84d rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED|  SKIPPED) |tests ran" $OUT/c5/gpu_unit_84d.txt | tail -4
(cd $OUT && tar -czf c5.tgz c5 && rm -rf c5)
date -u
