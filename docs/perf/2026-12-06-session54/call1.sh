#!/usr/bin/env bash
# Session 54, call 1: session 53's next_call1.sh (experiments 91, 91b and 92 against main 9880aed),
# reordered so that one pass of the A/B, the whole scripts/gpu-check of exp92m and the traces come
# before the second A/B pass, each stage under its own timeout, and the outputs are tarred whatever
# happens (at most 8 files come back). Carry [".device/s54", ".device/s54m"].
# Predictions: KERNEL_NOTES session 53, experiment 92.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x && mkdir -p $x/tools $x/tests $OUT/tr
pack() { cd $OUT && for d in ab1 ab2 tr; do [ -d $d ] && tar -czf $d.tgz $d && rm -rf $d; done; date -u; }
trap pack EXIT
xz -dc .device/s54/main.xz > $x/main && gunzip -c .device/s54m/chunktree.gz > $x/tools/chunktree &&
  xz -dc .device/s54m/chunktree_gpu_tests.xz > $x/tests/chunktree_gpu_tests &&
  xz -dc .device/s54m/chunktree_handoff_probe.xz > $x/tests/chunktree_handoff_probe || exit 1
for b in e91 e91b e92_trace e91b_trace main_trace; do gunzip -c .device/s54/$b.gz > $x/$b || exit 1; done
chmod +x $x/* $x/tools/* $x/tests/*
builds=(main=$x/main e91=$x/e91 e91b=$x/e91b e92=$x/tools/chunktree)
timeout 200 bench/compare.sh $OUT/ab1 "${builds[@]}" -- no-share chunkattn-t3 small > /dev/null 2>&1
cat $OUT/ab1/compare.md; echo "== A/B pass 1 done ($((SECONDS - start)) s)"
timeout 200 scripts/gpu-check --no-build --build-dir $x --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "exp92m gpu-check rc $? ($((SECONDS - start)) s)"; tail -14 $OUT/gpu_check.txt
trace() {  # name cli args...
  local name=$1 cli=$2; shift 2
  CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 30 $cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: trace rc $?"
  echo "== $name"; python3 bench/tile_trace.py $OUT/tr/$name.csv | tail -5
}
trace e92_b32_mha_1k $x/e92_trace --batch 32 --heads 32 --kv-heads 32 --suffix 1024
trace e92_b512_gqa8x1_1k $x/e92_trace --batch 512 --heads 8 --kv-heads 1 --suffix 1024
for b in main e91b e92; do trace ${b}_np1024_ns1024 $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --prefix 1024 --suffix 0; done
echo "== traces done ($((SECONDS - start)) s)"
left=$((560 - (SECONDS - start)))
[ $left -gt 60 ] && timeout $left bench/compare.sh $OUT/ab2 $(printf '%s\n' "${builds[@]}" | tac) -- no-share chunkattn-t3 small > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 done ($((SECONDS - start)) s)"
