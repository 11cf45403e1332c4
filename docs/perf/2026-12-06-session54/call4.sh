#!/usr/bin/env bash
# Session 54, call 4: experiment 93 (branch exp93, 6e3debb, clean build) against main ad73297
# (experiment 92): `bench/compare.sh` over no-share, chunkattn-t3 and small twice (main / e93, then
# e93 / main); e93's GPU unit suite, --strict quick grids and random trees, memcheck and racecheck on
# gpu-check's subsets; traces of the 1k no-share rows and np1024_ns1024 on both. Carry [".device/s54e"].
# Prediction: KERNEL_NOTES session 54, experiment 93.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x && rm -rf $x && mkdir -p $x $OUT/tr $OUT/ck
pack() { cd $OUT && for d in ab1 ab2 tr ck; do [ -d $d ] && tar -czf $d.tgz $d && rm -rf $d; done; date -u; }
trap pack EXIT
for b in chunktree main e93_trace main_trace; do gunzip -c .device/s54e/$b.gz > $x/$b || exit 1; done
xz -dc .device/s54e/gpu_tests.xz > $x/gpu_tests && chmod +x $x/* || exit 1
timeout 100 bench/compare.sh $OUT/ab1 main=$x/main e93=$x/chunktree -- no-share chunkattn-t3 small > /dev/null 2>&1
cat $OUT/ab1/compare.md; echo "== A/B pass 1 done ($((SECONDS - start)) s)"
cli=$x/chunktree
$cli gentests --quick /tmp/q > /dev/null && $cli gentests --seq-first --quick /tmp/sq > /dev/null && $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null || exit 1
for g in q sq t; do timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/ck/check_$g.txt 2>&1; echo "e93 check $g rc $?: $(grep -c ^PASSED $OUT/ck/check_$g.txt)/$(ls /tmp/$g/*.txt | wc -l)"; done
timeout 120 $x/gpu_tests > $OUT/ck/gpu_unit.txt 2>&1; echo "e93 gpu unit rc $?: $(tail -3 $OUT/ck/gpu_unit.txt | tr '\n' ' ')"
subset=$(grep -o "^subset='[^']*'" scripts/gpu-check | cut -d"'" -f2)
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 $x/gpu_tests --gtest_filter="$subset" > $OUT/ck/memcheck.txt 2>&1; echo "memcheck rc $?: $(tail -1 $OUT/ck/memcheck.txt)"
rsub=$(grep -o "racecheck --error-exitcode 1 \"\$tests\" --gtest_filter='[^']*'" scripts/gpu-check | cut -d"'" -f2)
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $x/gpu_tests --gtest_filter="$rsub" > $OUT/ck/racecheck.txt 2>&1; echo "racecheck rc $?: $(tail -1 $OUT/ck/racecheck.txt)"
echo "== checks done ($((SECONDS - start)) s)"
trace() {  # name cli args...
  local name=$1 cli=$2; shift 2
  CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 30 $cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: trace rc $?"
  echo "== $name"; python3 bench/tile_trace.py $OUT/tr/$name.csv | tail -4
}
for b in main e93; do
  trace ${b}_b32_mha_1k $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --suffix 1024
  trace ${b}_b512_gqa8x1_1k $x/${b}_trace --batch 512 --heads 8 --kv-heads 1 --suffix 1024
  trace ${b}_np1024_ns1024 $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --prefix 1024 --suffix 0
done
left=$((540 - (SECONDS - start)))
[ $left -gt 60 ] && timeout $left bench/compare.sh $OUT/ab2 e93=$x/chunktree main=$x/main -- no-share chunkattn-t3 small > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 done ($((SECONDS - start)) s)"
