#!/usr/bin/env bash
# Session 44, call 4 (the session's last ~170 s of device time): where hydragen-micro b512_p1k_s0's
# engine-path call got slower between 2125387 (.device/s41c: experiment 77) and main 6a485c1
# (.device/s44m: 79-79f): ncu's duration and instruction count of each chunktree kernel of the
# replayed call, through each wheel. Carry [".device/s41c", ".device/s44m"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name --format=csv,noheader
for b in e77=.device/s41c main=.device/s44m; do
  label=${b%%=*}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_$label ${b#*=}/wheel/*.whl || exit 1
  PYTHONPATH=/tmp/s_$label timeout 45 ncu --clock-control none --graph-profiling node -k regex:"states|merge" --launch-skip 30 --launch-count 6 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,sm__cycles_active.avg,launch__grid_size \
    python3 bench/baselines.py --cases docs/perf/2026-12-06-session44/cases_b512_p1k_s0.json \
    --ceilings docs/perf/2026-12-06-session44-run/ceilings.json --impl chunktree-paged --repeats 20 --warmups 5 --settle-ms 0 \
    --out /tmp/x_$label.csv > $OUT/ncu_$label.txt 2>&1
  echo "ncu $label rc $? at $((SECONDS - start)) s"
  grep -E "^  [a-z_].*\(|duration|inst_executed|grid_size" $OUT/ncu_$label.txt | head -24
done
