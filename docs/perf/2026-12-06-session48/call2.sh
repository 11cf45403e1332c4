#!/usr/bin/env bash
# Session 48, call 2: experiment 84b (branch exp84b, 84 + the producer's wait for a stage's slot moved
# after the window's loads and the stage's box choice, just before its first write; .device/s48e84b)
# against main (.device/s47m) and 84 (.device/s48e84), one machine:
# 1. page_order_profile.py 16 {consecutive, random} b64_p4k b256_p2k: main, e84b, e84, main, e84b;
# 2. scripts/gpu-check --no-build of 84b;
# 3. bench/compare.sh main / e84b / main / e84b over hydragen-micro (the cache path: the spill, and
#    the moved wait on its long runs), in the time left.
# Carry [".device/s47m", ".device/s48e84w", ".device/s48e84b"]. Prediction (KERNEL_NOTES 84b, written
# before the run): random order within ±1 % of main in the wgmma kernel (84 was +6 %); consecutive
# as 84 or up to 3 % faster (b64_p4k ≤ 20.9 µs a layer, b256_p2k ≤ 25.3); hydragen-micro within
# ±1 %; gpu-check green.
set -u
start=$SECONDS
limit=${1:-590}
s48=docs/perf/2026-12-06-session48
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e84=.device/s48e84w e84b=.device/s48e84b; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c2
for label in main e84b e84 main e84b; do
  for order in consecutive random; do
    PYTHONPATH=/tmp/w_$label timeout 40 python3 $s48/page_order_profile.py 16 $order b64_p4k b256_p2k >> $OUT/c2/page16_${order}_$label.txt 2>&1
    echo "== $label $order rc $? ($((SECONDS - start)) s)"; grep "replay span" $OUT/c2/page16_${order}_$label.txt | tail -2
  done
done
(cd $OUT && tar -czf c2.tgz c2)
timeout 260 scripts/gpu-check --no-build --build-dir .device/s48e84b --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
grep -E "^\[  (PASSED|FAILED) " /tmp/gc/gpu-unit-tests.log | head -5
left=$((limit - 20 - (SECONDS - start)))
timeout $left bench/compare.sh $OUT/c2/cache main=.device/s47m/chunktree e84b=.device/s48e84b/tools/chunktree main2=.device/s47m/chunktree \
  e84b2=.device/s48e84b/tools/chunktree -- hydragen-micro > $OUT/c2/compare.log 2>&1
echo "== compare rc $? ($((SECONDS - start)) s)"; cat $OUT/c2/cache/compare.md 2>/dev/null | head -40
rm -f $OUT/c2.tgz; (cd $OUT && tar -czf c2.tgz c2 && rm -rf c2)
date -u
