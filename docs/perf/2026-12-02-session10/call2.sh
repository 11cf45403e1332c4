#!/usr/bin/env bash
# Session 10, call 2: the committed run of issue 9's targets with the bench's settle pause:
# bench/run_all.sh (every chunktree and peer row after 250 ms idle), host-bench b1024_p2k three
# times more, the targets, then bench/compare.sh of 431f552's CLI and this one on every preset with
# the card's clocks and power sampled every 100 ms (431f552's CLI has no pause: it never reached
# the power cap, call 7 of session 9).
set -u
d=.device/s10
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
bench/run_all.sh $OUT/run > $OUT/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep -A6 "b1024_p2k" $OUT/run/host.txt | grep make_plan
for i in 1 2 3; do $cli host-bench --case b1024_p2k >> $OUT/host_again.txt 2>&1; done; grep make_plan $OUT/host_again.txt | tr -s ' '
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv 2>&1 | tail -8
grep graph $OUT/run/decode_loop.txt | cut -c1-120
echo "run power-cap samples: $(grep -c 0x0000000000000004 $OUT/run/clocks.csv) of $(wc -l < $OUT/run/clocks.csv)"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 100 > $OUT/ab_clocks.csv &
smi=$!
timeout 280 bench/compare.sh $OUT/ab old431=$d/old431 current=$cli > /dev/null 2>&1; echo "compare rc $?"
kill $smi
python3 - $OUT/ab <<'PY'
import csv, sys
out = sys.argv[1]
def rows(label):
    with open(f"{out}/{label}.csv") as f:
        return {(r["preset"], r["case"]): r for r in csv.DictReader(f) if r["impl"] == "chunktree" and r["median_us"]}
old, new = rows("old431"), rows("current")
slower = []
for key, n in new.items():
    o = old.get(key)
    if not o: continue
    # slower beyond the spread: our p10 above 431f552's p90
    if float(n["p10_us"]) > float(o["p90_us"]):
        slower.append(f"{key[0]} {key[1]}: {float(n['median_us']):.1f} (p10 {float(n['p10_us']):.1f}) vs {float(o['median_us']):.1f} (p90 {float(o['p90_us']):.1f})")
print(f"compared {sum(1 for k in new if k in old)} rows; slower beyond spread: {len(slower)}")
print("\n".join(slower))
PY
tar -C $OUT -cf $OUT/run.tar run ab ab_clocks.csv && rm -rf $OUT/run $OUT/ab $OUT/ab_clocks.csv
date -u
