#!/usr/bin/env bash
# Session 53, call 2 (carry [".device/s52z", ".device/s53e1"]). Call 1's traces showed ~24 of the
# 132 SMs streaming ~40 % faster than the rest, so that a static deal of equal tiles idles them at
# the end. Does a finer split dealt by the hardware (one CTA per tile) balance it?
# 1. `chunktree bench --preset no-share` with main's CLI (9880aed), then with s53e1 (main's code plus
#    an experiment-only switch, CHUNKTREE_EXP_GRID, that forces the one-CTA-per-tile grid on eager
#    launches) at --split 512, 256, 128, each with the persistent and with the one-per-tile grid;
# 2. traces (trace build of the same s53e1) of b512_gqa8x1_1k and b32_mha_1k at split 256, one CTA per tile;
# 3. call 1's wave sweep again, ours beside torch SDPA (cuDNN), with the paths fixed.
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
root=$PWD; mkdir -p /tmp/c2 $OUT/ab $OUT/tr $OUT/sweep
gunzip -c .device/s52z/chunktree.gz > /tmp/c2/main && gunzip -c .device/s53e1/chunktree.gz > /tmp/c2/e1 && gunzip -c .device/s53e1/trace.gz > /tmp/c2/tr && chmod +x /tmp/c2/* || exit 1
run() {  # name, cli, args...
  local name=$1 cli=$2; shift 2
  timeout 60 $cli bench --preset no-share "$@" --csv $OUT/ab/$name.csv > $OUT/ab/$name.txt 2>&1 || echo "$name rc $?"
}
run main /tmp/c2/main
for s in 512 256 128; do
  run e1_s${s}_persistent /tmp/c2/e1 --split $s
  CHUNKTREE_EXP_GRID=1 run e1_s${s}_tile /tmp/c2/e1 --split $s
done
run main2 /tmp/c2/main
for f in $OUT/ab/*.csv; do echo "== $(basename $f .csv)"; grep ',chunktree,' $f | cut -d, -f2,11,24 ; done
date -u
for shape in "b32_mha_1k 32 32 32" "b512_gqa8x1_1k 512 8 1"; do
  set -- $shape
  CHUNKTREE_EXP_GRID=1 CHUNKTREE_TILE_TRACE=$OUT/tr/$1_s256_tile.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 /tmp/c2/tr bench --repeats 5 \
    --batch $2 --heads $3 --kv-heads $4 --suffix 1024 --split 256 > $OUT/tr/$1_bench.txt 2>&1 || echo "$1: trace rc $?"
  python3 bench/tile_trace.py $OUT/tr/$1_s256_tile.csv | head -12
done
(cd $OUT && tar -czf tr.tgz tr && rm -rf tr)
cd $OUT/sweep
for shape in "264 8 1" "528 8 1" "792 8 1" "1056 8 1" "33 32 32" "66 32 32" "32 32 32"; do
  set -- $shape
  name=b$1_h$2_k$3_1k
  /tmp/c2/main bench --batch $1 --heads $2 --kv-heads $3 --suffix 1024 --cases-json $PWD/$name.json > /dev/null
  timeout 40 /tmp/c2/main bench --batch $1 --heads $2 --kv-heads $3 --suffix 1024 --csv ours_$name.csv --ceilings-json $PWD/ceil.json > $name.txt 2>&1
done
cases=(); for f in $PWD/b*_1k.json; do cases+=(--cases $f); done
(cd $root && timeout 150 python3 bench/baselines.py "${cases[@]}" --ceilings $OUT/sweep/ceil.json --out $OUT/sweep/sdpa.csv --impl sdpa) > sdpa.log 2>&1 || tail -3 sdpa.log
for f in ours_*.csv sdpa.csv; do grep -v ^preset $f | grep -v noshare | cut -d, -f3,4,5,6,11; done
cd $OUT && tar -czf sweep.tgz sweep && tar -czf ab.tgz ab && rm -rf sweep ab
date -u
