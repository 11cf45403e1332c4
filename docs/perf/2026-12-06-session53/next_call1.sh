#!/usr/bin/env bash
# For session 54's first call (prepared in session 53, not run): experiments 91, 91b and 92 against
# main 9880aed in one call, on whatever card comes. `.device/s54` holds main.xz (9880aed's CLI),
# e91.gz (01857aa), e91b.gz (a3edafc) and trace builds of main, e91b and e92; `.device/s54m` a clean
# build of branch exp92m (92's code as one commit on main): CLI, wheel, GPU tests and probe. If the
# machine is fresh, rebuild them from the patches in this folder. Carry [".device/s54", ".device/s54m"].
# (a) `bench/compare.sh` over no-share, chunkattn-t3 and small, the four builds, twice (the second
# pass in the reverse order); (b) the whole scripts/gpu-check of exp92m; (c) traces: P4's 1k rows on
# e92, and the fully shared np1024_ns1024 on main, e91b and e92 (where 91 and 91b lost 1-5 %).
# Predictions: KERNEL_NOTES session 53, experiment 92. If 92 holds, merge exp92m (--ff-only) and make
# a committed run as session 52's call1.sh, with `.device/s54m` and `.carry`.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x && mkdir -p $x/tools $x/tests $OUT/tr
xz -dc .device/s54/main.xz > $x/main && gunzip -c .device/s54m/chunktree.gz > $x/tools/chunktree &&
  xz -dc .device/s54m/chunktree_gpu_tests.xz > $x/tests/chunktree_gpu_tests &&
  xz -dc .device/s54m/chunktree_handoff_probe.xz > $x/tests/chunktree_handoff_probe || exit 1
for b in e91 e91b e92_trace e91b_trace main_trace; do gunzip -c .device/s54/$b.gz > $x/$b || exit 1; done
chmod +x $x/* $x/tools/* $x/tests/*
builds=(main=$x/main e91=$x/e91 e91b=$x/e91b e92=$x/tools/chunktree)
bench/compare.sh $OUT/ab1 "${builds[@]}" -- no-share chunkattn-t3 small > /dev/null 2>&1
bench/compare.sh $OUT/ab2 $(printf '%s\n' "${builds[@]}" | tac) -- no-share chunkattn-t3 small > /dev/null 2>&1
cat $OUT/ab1/compare.md $OUT/ab2/compare.md; echo "== A/B done ($((SECONDS - start)) s)"
(cd $OUT && tar -czf ab.tgz ab1 ab2 && rm -rf ab1 ab2)
scripts/gpu-check --no-build --build-dir $x --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "exp92m gpu-check rc $? ($((SECONDS - start)) s)"; tail -14 $OUT/gpu_check.txt
trace() {  # name cli args...
  local name=$1 cli=$2; shift 2
  CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 $cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: trace rc $?"
  echo "== $name"; python3 bench/tile_trace.py $OUT/tr/$name.csv | tail -5
}
trace e92_b32_mha_1k $x/e92_trace --batch 32 --heads 32 --kv-heads 32 --suffix 1024
trace e92_b512_gqa8x1_1k $x/e92_trace --batch 512 --heads 8 --kv-heads 1 --suffix 1024
for b in main e91b e92; do trace ${b}_np1024_ns1024 $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --prefix 1024 --suffix 0; done
(cd $OUT && tar -czf tr.tgz tr && rm -rf tr)
date -u
