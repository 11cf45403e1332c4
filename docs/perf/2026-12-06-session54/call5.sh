#!/usr/bin/env bash
# Session 54, call 5: experiment 93b (diagnostic) beside main ad73297 and 93: `bench/compare.sh`
# over no-share and chunkattn-t3, main / e93 / e93b then reversed, and traces of b32_mha_1k,
# b512_gqa8x1_1k and np1024_ns1024 on the three trace builds. Carry [".device/s54f"].
# Prediction: KERNEL_NOTES session 54, experiment 93b.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x5 && rm -rf $x && mkdir -p $x $OUT/tr
pack() { cd $OUT && for d in ab1 ab2 tr; do [ -d $d ] && tar -czf $d.tgz $d && rm -rf $d; done; date -u; }
trap pack EXIT
for b in main e93 e93b main_trace e93_trace e93b_trace; do gunzip -c .device/s54f/$b.gz > $x/$b || exit 1; done
chmod +x $x/*
trace() {  # name cli args...
  local name=$1 cli=$2; shift 2
  CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 30 $cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: trace rc $?"
  echo "== $name"; python3 bench/tile_trace.py $OUT/tr/$name.csv | sed -n '3,4p;7p'
}
for b in main e93 e93b; do
  trace ${b}_b32_mha_1k $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --suffix 1024
  trace ${b}_b512_gqa8x1_1k $x/${b}_trace --batch 512 --heads 8 --kv-heads 1 --suffix 1024
  trace ${b}_np1024_ns1024 $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --prefix 1024 --suffix 0
done
echo "== traces done ($((SECONDS - start)) s)"
timeout 150 bench/compare.sh $OUT/ab1 main=$x/main e93=$x/e93 e93b=$x/e93b -- no-share chunkattn-t3 > /dev/null 2>&1
cat $OUT/ab1/compare.md; echo "== A/B pass 1 done ($((SECONDS - start)) s)"
left=$((${CALL_BUDGET_S:-330} - (SECONDS - start)))
[ $left -gt 40 ] && timeout $left bench/compare.sh $OUT/ab2 e93b=$x/e93b e93=$x/e93 main=$x/main -- no-share chunkattn-t3 > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 done ($((SECONDS - start)) s)"
