#!/usr/bin/env bash
# Session 20, call 1: experiment 47 (mma.sync tiles of packed kv heads; branch exp47-packed-heads)
# checked and timed against main, and session 19's end-phase traces of main (next_call.sh there).
# Binaries built here, stripped: .device/s20/{chunktree_e47, gpu_tests_e47, chunktree_trace_e47}
# (packing up to 512 tokens), .device/s19m/chunktree (main's kernels, a15b201's), .device/s20t
# /chunktree_trace (main, -DCHUNKTREE_TILE_TRACE=ON). Prediction: KERNEL_NOTES, experiment 47.
set -u
x=.device/s20; main=.device/s19m/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 150 $x/gpu_tests_e47 > $OUT/r/unit_e47.txt 2>&1; echo "unit e47 rc $?"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $OUT/r/unit_e47.txt | head -20
$main gentests --quick /tmp/q > /dev/null; $main gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 60 $x/chunktree_e47 check --strict --backend cuda --jobs 16 /tmp/q/*.txt /tmp/t/*.txt > $OUT/r/check_e47.txt 2>&1; echo "e47 strict rc $? $(grep -c ^PASSED $OUT/r/check_e47.txt)/132"
date -u
trace() {  # cli name shape...
  local cli=$1 name=$2; shift 2
  CHUNKTREE_TILE_TRACE_CALL=5 CHUNKTREE_TILE_TRACE=$OUT/r/$name.csv timeout 60 $cli bench --repeats 3 --warm "$@" --dim 128 --chunk 64 > /dev/null 2>&1
  files=$OUT/r/$name.csv; [ -s $files.wgmma ] && files="$files $files.wgmma"
  echo "== $name"; python3 bench/tile_trace.py $files > $OUT/r/$name.txt 2>&1; head -30 $OUT/r/$name.txt
}
trace .device/s20t/chunktree_trace main_noshare_b512_gqa8x1_1k --batch 512 --heads 8 --kv-heads 1 --prefix 0 --suffix 1024
trace .device/s20t/chunktree_trace main_noshare_b32_mha_1k --batch 32 --heads 32 --kv-heads 32 --prefix 0 --suffix 1024
trace .device/s20t/chunktree_trace main_spec_b256_mha --batch 256 --heads 32 --kv-heads 32 --prefix 4096 --suffix 8 --queries 8
trace $x/chunktree_trace_e47 e47_spec_b256_mha --batch 256 --heads 32 --kv-heads 32 --prefix 4096 --suffix 8 --queries 8
trace $x/chunktree_trace_e47 e47_spec_b64_mha_s264 --batch 64 --heads 32 --kv-heads 32 --prefix 4096 --suffix 264 --queries 8
gzip $OUT/r/*.csv $OUT/r/*.wgmma 2>/dev/null
date -u
timeout 330 bench/compare.sh $OUT/r/ab47 main=$main e47=$x/chunktree_e47 -- spec-decode flashinfer-cascade chunkattn-t3 small no-share gqa-llama3 > $OUT/r/compare47.log 2>&1; echo "compare47 rc $?"
cat $OUT/r/ab47/compare.md
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r; date -u
