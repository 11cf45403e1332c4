#!/usr/bin/env bash
# Session 19, call 3: experiment 44 as rebuilt after call 2 (call 2's build put two 64-row Q tiles
# in shared memory: one CTA per SM at d = 128, and the d = 256 kernel refused; its batch window
# assumed 16 rows). Now: two slots of records and batch windows handed a tile ahead by bulk copies,
# one Q tile loaded by the consumers from L2 (the producer prefetches it) during the last tile's
# combine and store. Built here, stripped into .device/s19b: chunktree_exp44, gpu_tests_exp44,
# chunktree_trace44 (-DCHUNKTREE_TILE_TRACE=ON); the base is .device/s18/chunktree_A (a15b201).
set -u
x=.device/s19b; base=.device/s18/chunktree_A
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 120 $x/gpu_tests_exp44 > $OUT/r/unit_exp44.txt 2>&1; echo "unit exp44 rc $?"; grep -E "^\[  (PASSED|FAILED)" $OUT/r/unit_exp44.txt
$base gentests --quick /tmp/q > /dev/null; $base gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 60 $x/chunktree_exp44 check --strict --backend cuda --jobs 16 /tmp/q/*.txt /tmp/t/*.txt > $OUT/r/check_exp44.txt 2>&1; echo "exp44 strict rc $? $(grep -c ^PASSED $OUT/r/check_exp44.txt)/132"
tt=.device/s19t/tile_trace.py
trace() {  # name shape...
  local name=$1; shift
  CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/trace_$name.csv timeout 60 $x/chunktree_trace44 bench --repeats 3 --warm "$@" --dim 128 --chunk 64 > /dev/null 2>&1
  echo "== $name"; python3 $tt $OUT/r/trace_$name.csv | tee $OUT/r/trace_$name.txt
}
trace noshare_b512_gqa8x1_1k --batch 512 --heads 8 --kv-heads 1 --prefix 0 --suffix 1024
trace noshare_b32_mha_1k --batch 32 --heads 32 --kv-heads 32 --prefix 0 --suffix 1024
timeout 330 bench/compare.sh $OUT/r/ab44 A=$base exp44=$x/chunktree_exp44 -- no-share chunkattn-t3 small gqa-llama3 hydragen-micro spec-decode > $OUT/r/compare44.log 2>&1; echo "compare44 rc $?"
tar -C $OUT -czf $OUT/call3.tgz r && rm -rf $OUT/r; date -u
