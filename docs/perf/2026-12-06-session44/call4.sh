#!/usr/bin/env bash
# For session 45, call 4: where the engine path's fully shared short rows' +4-5 µs since experiment 79
# sits (KERNEL_NOTES session 44). Through 2125387's wheel (.device/s41c: experiment 77) and main's
# (.device/s44m: 79-79f): each row's replayed call under torch.profiler (paged_row_profile.py: the
# kernels' timeline, each kind's duration, the idle time), then ncu's duration, instructions and grid
# of each chunktree kernel of b512_p1k_s0's call. Carry [".device/s41c", ".device/s44m"]. ~100 s.
# Prediction: the wgmma kernel holds the +4 µs (the kernels around it as in 77).
set -u
start=$SECONDS
here=docs/perf/2026-12-06-session44
nvidia-smi --query-gpu=name --format=csv,noheader; date -u
for b in e77=.device/s41c main=.device/s44m; do
  label=${b%%=*}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s_$label ${b#*=}/wheel/*.whl || exit 1
  for cases in $here/cases_profile_hydragen.json $here/cases_profile_cascade.json; do
    PYTHONPATH=/tmp/s_$label timeout 60 python3 $here/paged_row_profile.py $cases 12 >> $OUT/profile_$label.txt 2>&1
  done
  echo "profile $label rc $? at $((SECONDS - start)) s"; grep " span " $OUT/profile_$label.txt
done
for b in e77=.device/s41c main=.device/s44m; do
  label=${b%%=*}
  PYTHONPATH=/tmp/s_$label timeout 45 ncu --clock-control none --graph-profiling node -k regex:"states|merge" --launch-skip 30 --launch-count 6 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,sm__cycles_active.avg,launch__grid_size \
    python3 bench/baselines.py --cases $here/cases_b512_p1k_s0.json --ceilings docs/perf/2026-12-06-session44-run/ceilings.json \
    --impl chunktree-paged --repeats 20 --warmups 5 --settle-ms 0 --out /tmp/x_$label.csv > $OUT/ncu_$label.txt 2>&1
  echo "ncu $label rc $? at $((SECONDS - start)) s"
  grep -E "^  [a-z_].*\(|duration|inst_executed|grid_size" $OUT/ncu_$label.txt | head -24
done
