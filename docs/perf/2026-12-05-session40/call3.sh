#!/usr/bin/env bash
# Session 40, call 3 (session 39's next_trace.sh, then host_step.py): per-tile
# traces of the cases experiment 73 left open (KERNEL_NOTES session 39), with a CLI of 0440cc7 built
# with -DCHUNKTREE_TILE_TRACE=ON (.device/s40t/chunktree; not for timing): b64_p4k's layer at 512
# and 768 (the private tiles beside 128 or 96 wgmma tiles), b256_p2k's layer (its mma.sync kernel
# ends ~16 us after the wgmma kernel though 68 SMs are free of wgmma tiles), and gqa-llama3 b64_p8k
# at 2048 and 2816 (where fewer, longer wgmma tiles ran 2.7 % slower than the model priced them).
# Each case: the traced eager call (the 5th, the last warm-up of the first implementation), then
# bench/tile_trace.py over both kernels' files. Carry [".device/s40t"].
set -u
start=$SECONDS
C=.device/s40t/chunktree
gqa="--heads 32 --kv-heads 8 --dim 128 --chunk 64 --repeats 5"
trace() {  # NAME ARGS...
  local name=$1; shift
  CHUNKTREE_TILE_TRACE=$OUT/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 60 $C bench "$@" > $OUT/$name.bench.txt 2>&1
  echo "== $name (rc $?, at $((SECONDS - start)) s)"
  python3 bench/tile_trace.py $OUT/$name.csv $OUT/$name.csv.wgmma > $OUT/$name.trace.txt 2>&1; head -40 $OUT/$name.trace.txt
}
trace b64_p4k_512 --batch 64 --prefix 4096 --suffix 20 $gqa --split 512
trace b64_p4k_768 --batch 64 --prefix 4096 --suffix 20 $gqa --split 768
trace b256_p2k --batch 256 --prefix 2048 --suffix 20 $gqa
trace gqa_b64_p8k_2048 --batch 64 --prefix 8192 --suffix 512 $gqa --split 2048
trace gqa_b64_p8k_2816 --batch 64 --prefix 8192 --suffix 512 $gqa --split 2816
# Then where the decode loop's chunktree-graph step spends its host time (host_step.py, the wheel of
# .device/s40r; carry [".device/s40t", ".device/s40r"] for both).
mkdir -p /tmp/hs && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/hs .device/s40r/wheel/*.whl
PYTHONPATH=/tmp/hs:bench timeout 120 python3 docs/perf/2026-12-05-session40/host_step.py > $OUT/host_step.txt 2>&1
echo "host_step rc $? at $((SECONDS - start)) s"; cat $OUT/host_step.txt
bench/host_machine.sh > $OUT/host_machine.txt 2>&1
cd $OUT && tar -czf /tmp/t.tgz . && rm -rf ./* && mv /tmp/t.tgz $OUT/traces.tgz; date -u
