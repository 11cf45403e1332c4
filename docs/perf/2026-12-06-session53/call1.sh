#!/usr/bin/env bash
# Session 53, call 1 (carry [".device/s52z", ".device/s52tr", ".carry"]):
# 1. on an H200 only, a committed run of main's code (9880aed's CLI and wheel, `.device/s52z`);
# 2. per-tile traces of P4's no-share rows with a trace build of the same code (session 52's call3.sh);
# 3. a wave sweep of the no-share shapes, ours (`chunktree bench`) beside torch SDPA (cuDNN) in the
#    same call: b{264,528,792,1056}_gqa8x1_1k (1-4 rounds of 264 CTAs) and b{33,66}_mha_1k (4 and 8
#    rounds), to split each side's time into a fixed part and a per-round part.
set -u
card=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$card"; date -u
rc=0
if [[ "$card" == *H200* ]]; then bench/committed_run.sh .device/s52z $OUT 450 || rc=$?; fi
bash docs/perf/2026-12-06-session52/call3.sh
# The wave sweep.
mkdir -p $OUT/sweep && cd $OUT/sweep
cli=/tmp/tr/sweep_cli; gunzip -c $OLDPWD/.device/s52z/chunktree.gz > $cli && chmod +x $cli
for shape in "264 8 1" "528 8 1" "792 8 1" "1056 8 1" "33 32 32" "66 32 32" "32 32 32"; do
  set -- $shape
  name=b$1_h$2_k$3_1k
  $cli bench --batch $1 --heads $2 --kv-heads $3 --suffix 1024 --cases-json $name.json > /dev/null
  timeout 40 $cli bench --batch $1 --heads $2 --kv-heads $3 --suffix 1024 --csv ours_$name.csv --ceilings-json ceil.json > $name.txt 2>&1
done
cases=(); for f in b*_1k.json; do cases+=(--cases $f); done
(cd $OLDPWD && timeout 120 python3 bench/baselines.py "${cases[@]}" --ceilings $OUT/sweep/ceil.json --out $OUT/sweep/sdpa.csv --impl sdpa) > sdpa.log 2>&1
cut -d, -f3,4,5,6,11 ours_*.csv sdpa.csv
cd $OUT && tar -czf sweep.tgz sweep && rm -rf sweep
date -u
exit $rc
