#!/usr/bin/env bash
# Session 19, call 2: experiments 44 (tiles handed off a tile ahead) and 45 (wgmma at the top
# stream priority) checked and timed. Built here and stripped into .device/s19: chunktree_exp44
# (branch exp44-early-handoff), chunktree_exp45 and gpu_tests_exp45 (exp45-wgmma-priority, on 44),
# chunktree_trace45 (exp45 with -DCHUNKTREE_TILE_TRACE=ON); the base is session 18's
# .device/s18/chunktree_A (a15b201: main's kernels and cost model).
set -u
x=.device/s19; base=.device/s18/chunktree_A
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 120 $x/gpu_tests_exp45 > $OUT/r/unit_exp45.txt 2>&1; echo "unit exp45 rc $?"; grep -E "^\[  (PASSED|FAILED)" $OUT/r/unit_exp45.txt
$base gentests --quick /tmp/q > /dev/null; $base gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 60 $x/chunktree_exp45 check --strict --backend cuda --jobs 16 /tmp/q/*.txt /tmp/t/*.txt > $OUT/r/check_exp45.txt 2>&1; echo "exp45 strict rc $? $(grep -c ^PASSED $OUT/r/check_exp45.txt)/132"
tt=.device/s19t/tile_trace.py
trace() {  # name shape...
  local name=$1; shift
  CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/trace_$name.csv timeout 60 $x/chunktree_trace45 bench --repeats 3 --warm "$@" --dim 128 --chunk 64 > /dev/null 2>&1
  files=$OUT/r/trace_$name.csv; [ -s $files.wgmma ] && files="$files $files.wgmma"
  echo "== $name"; python3 $tt $files | tee $OUT/r/trace_$name.txt
}
trace noshare_b512_gqa8x1_1k --batch 512 --heads 8 --kv-heads 1 --prefix 0 --suffix 1024
trace noshare_b32_mha_1k --batch 32 --heads 32 --kv-heads 32 --prefix 0 --suffix 1024
trace b64_p2k --batch 64 --heads 32 --kv-heads 8 --prefix 2048 --suffix 512 --split 0
timeout 250 bench/compare.sh $OUT/r/ab44 A=$base exp44=$x/chunktree_exp44 -- no-share chunkattn-t3 small gqa-llama3 > $OUT/r/compare44.log 2>&1; echo "compare44 rc $?"
timeout 170 bench/compare.sh $OUT/r/ab45 exp44=$x/chunktree_exp44 exp45=$x/chunktree_exp45 -- gqa-llama3 hydragen-micro spec-decode > $OUT/r/compare45.log 2>&1; echo "compare45 rc $?"
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r; date -u
