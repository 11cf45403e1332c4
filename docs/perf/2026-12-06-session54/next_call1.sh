#!/usr/bin/env bash
# For session 55's first call (prepared in session 54, not run: its device time was spent): why
# experiment 93's stage loop got slower. Builds in `.device/s55a` (all gzipped CLIs): main (ad73297,
# clean), e93 (6e3debb, clean), e93b (exp93b 4ad91f6: Q in registers, the next Q copied in the end
# phase), e93c (exp93c 21ab5f5: 93 with the next Q's copy between two runs of the stage loop; 16 bytes
# of stack at d 128, outside the stage loop), and a trace build of each. If the machine is fresh,
# rebuild them from branches exp93, exp93b and exp93c. Carry [".device/s55a"] (10 MB).
# (a) traces of b32_mha_1k, b512_gqa8x1_1k and np1024_ns1024 on the four trace builds; (b)
# `bench/compare.sh` over no-share and chunkattn-t3 (and bench/shapes.txt), the four builds, then in
# the reverse order. Predictions: KERNEL_NOTES session 54, experiments 93b and 93c.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x55 && rm -rf $x && mkdir -p $x $OUT/tr
pack() { cd $OUT && for d in ab1 ab2 tr; do [ -d $d ] && tar -czf $d.tgz $d && rm -rf $d; done; date -u; }
trap pack EXIT
builds=(main e93 e93b e93c)
for b in "${builds[@]}"; do gunzip -c .device/s55a/$b.gz > $x/$b && gunzip -c .device/s55a/${b}_trace.gz > $x/${b}_trace || exit 1; done
chmod +x $x/*
trace() {  # name cli args...
  local name=$1 cli=$2; shift 2
  CHUNKTREE_TILE_TRACE=$OUT/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 30 $cli bench --repeats 5 "$@" > $OUT/tr/${name}_bench.txt 2>&1 || echo "$name: trace rc $?"
  echo "== $name"; python3 bench/tile_trace.py $OUT/tr/$name.csv | sed -n '4p;8,9p'
}
for b in "${builds[@]}"; do
  trace ${b}_b32_mha_1k $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --suffix 1024
  trace ${b}_b512_gqa8x1_1k $x/${b}_trace --batch 512 --heads 8 --kv-heads 1 --suffix 1024
  trace ${b}_np1024_ns1024 $x/${b}_trace --batch 32 --heads 32 --kv-heads 32 --prefix 1024 --suffix 0
done
echo "== traces done ($((SECONDS - start)) s)"
timeout 200 bench/compare.sh $OUT/ab1 $(for b in "${builds[@]}"; do echo $b=$x/$b; done) -- no-share chunkattn-t3 > /dev/null 2>&1
cat $OUT/ab1/compare.md; echo "== A/B pass 1 done ($((SECONDS - start)) s)"
left=$((${CALL_BUDGET_S:-540} - (SECONDS - start)))
[ $left -gt 60 ] && timeout $left bench/compare.sh $OUT/ab2 $(for b in "${builds[@]}"; do echo $b=$x/$b; done | tac) -- no-share chunkattn-t3 > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 done ($((SECONDS - start)) s)"
