#!/usr/bin/env bash
# Session 48, call 3: experiment 84c (branch exp84b, 0da4454: 84b + which runs begin a stage of
# consecutive whole pages found once a window, one test a stage where the window has none;
# .device/s48e84c) against main (.device/s47m) and 84b (.device/s48e84bw), one machine:
# 1. page_order_profile.py 16 {consecutive, random} b64_p4k b256_p2k: main, e84c, e84b, main, e84c;
# 2. scripts/gpu-check --no-build of 84c;
# 3. bench/compare.sh main / e84c / main / e84c over hydragen-micro (20 / 12 bytes of spill now, 84b's
#    16 / 16), in the time left.
# Carry [".device/s47m", ".device/s48e84bw", ".device/s48e84c"]. Prediction (KERNEL_NOTES 84c, written
# before the run): random order within ±1 % of main in the wgmma kernel (84b +4.7 %), if the check's
# instructions were the cost; consecutive as 84b (b64_p4k 20.1 µs a layer, b256_p2k 23.9) ±2 %;
# hydragen-micro within ±1 %; gpu-check green.
set -u
start=$SECONDS
limit=${1:-590}
s48=docs/perf/2026-12-06-session48
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in main=.device/s47m e84b=.device/s48e84bw e84c=.device/s48e84c; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/w_${b%%=*} ${b#*=}/wheel/*.whl || exit 1
done
mkdir -p $OUT/c3
for label in main e84c e84b main e84c; do
  for order in consecutive random; do
    PYTHONPATH=/tmp/w_$label timeout 40 python3 $s48/page_order_profile.py 16 $order b64_p4k b256_p2k >> $OUT/c3/page16_${order}_$label.txt 2>&1
    echo "== $label $order rc $? ($((SECONDS - start)) s)"; grep "replay span" $OUT/c3/page16_${order}_$label.txt | tail -2 | sed 's/void at::native::index_elementwise_kerne/index/'
  done
done
(cd $OUT && tar -czf c3.tgz c3)
timeout 260 scripts/gpu-check --no-build --build-dir .device/s48e84c --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
grep -E "^\[  (PASSED|FAILED) " /tmp/gc/gpu-unit-tests.log | head -5
left=$((limit - 20 - (SECONDS - start)))
timeout $left bench/compare.sh $OUT/c3/cache main=.device/s47m/chunktree e84c=.device/s48e84c/tools/chunktree main2=.device/s47m/chunktree \
  e84c2=.device/s48e84c/tools/chunktree -- hydragen-micro > $OUT/c3/compare.log 2>&1
echo "== compare rc $? ($((SECONDS - start)) s)"; cat $OUT/c3/cache/compare.md 2>/dev/null | head -40
rm -f $OUT/c3.tgz; (cd $OUT && tar -czf c3.tgz c3 && rm -rf c3)
date -u
