#!/usr/bin/env bash
# Session 10, call 3 (the final code, de1a7f0: make_plan's pieces two at a time, the
# sequence-first seed format): make_plan_reused at B = 1024 before (7465c85) and after on every core
# of the device host (plan_loop, a static host-only build of the planner, 10000 plans each),
# host-bench b1024_p2k three times, GPU pytest, scripts/gpu-check (with the sequence-first grids).
# call 2's run_all stands for the kernels (unchanged since) and the decode loop.
set -u
d=.device/s10
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for c in $(seq 0 $(($(nproc) - 1))); do
  for v in old new; do echo "core $c $v $(taskset -c $c $d/plan_$v 10000 402)"; done
done > $OUT/plan_cores.txt 2>&1
awk '{print $3, $6}' $OUT/plan_cores.txt | sort | awk '{s[$1]=s[$1]" "$2} END{for(k in s) print k":"s[k]}'
for i in 1 2 3; do $cli host-bench --case b1024_p2k >> $OUT/host.txt 2>&1; done; grep make_plan $OUT/host.txt | tr -s ' '
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $d/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
PYTHONPATH=/tmp/site python3 -m pytest -q python/tests > $OUT/pytest.txt 2>&1; echo "pytest rc $?"; tail -n 1 $OUT/pytest.txt; date -u
timeout 450 scripts/gpu-check --no-build --work /tmp/gc > $OUT/gpu-check.txt 2>&1; echo "gpu-check rc $?"; tail -n 16 $OUT/gpu-check.txt
grep -hE "^\[  FAILED|^FAILED" /tmp/gc/*.log /tmp/gc/*.out 2>/dev/null | head -10
date -u
