#!/usr/bin/env bash
# Session 10, call 3: the final committed run (de1a7f0: the piece writes of make_plan two pieces at
# a time, the sequence-first seed format): make_plan_reused at B = 1024 before (7465c85) and after
# on every core of the device host (plan_loop, a static host-only build of the planner, 10000 plans
# each), bench/run_all.sh, host-bench b1024_p2k three times more, the targets, GPU pytest.
set -u
d=.device/s10
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for c in $(seq 0 $(($(nproc) - 1))); do
  for v in old new; do echo "core $c $v $(taskset -c $c $d/plan_$v 10000 402)"; done
done > $OUT/plan_cores.txt 2>&1
awk '{print $3, $6}' $OUT/plan_cores.txt | sort | awk '{s[$1]=s[$1]" "$2} END{for(k in s) print k":"s[k]}'
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site
bench/run_all.sh $OUT/run > $OUT/run_all.log 2>&1; echo "run_all rc $?"; date -u
grep -A6 "b1024_p2k" $OUT/run/host.txt | grep make_plan
for i in 1 2 3; do $cli host-bench --case b1024_p2k >> $OUT/host_again.txt 2>&1; done; grep make_plan $OUT/host_again.txt | tr -s ' '
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv 2>&1 | tail -6
grep graph $OUT/run/decode_loop.txt | cut -c1-100
echo "run power-cap samples: $(grep -c 0x0000000000000004 $OUT/run/clocks.csv) of $(wc -l < $OUT/run/clocks.csv)"
python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt; date -u
tar -C $OUT -cf $OUT/run.tar run && rm -rf $OUT/run
