#!/usr/bin/env bash
# Session 24, call 5 (device): where the engine path's call time goes — paged_profile.py (graph
# replays of PagedAttention.run and torch SDPA: event times, kernel times and spans under
# torch.profiler) on main's cp312 wheel (.device/final, 051882e's src), and the CLI's rows of the
# same presets in the same call (.device/gc: cc2b939).
set -u
o=/tmp/call5; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $o/gpu.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/final/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
cli=.device/gc/tools/chunktree
for p in no-share small; do $cli bench --preset $p --cases-json $o/cases_$p.json > /dev/null 2>&1; $cli bench --preset $p --csv $o/cli_$p.csv > $o/cli_$p.txt 2>&1; done
grep -h ",chunktree,[0-9]" $o/cli_*.csv | cut -d, -f1,2,11
PYTHONPATH=/tmp/site timeout 200 python3 docs/perf/2026-12-04-session24/paged_profile.py $o/cases_no-share.json b512_gqa8x1_1k b32_mha_1k > $o/profile_no-share.txt 2>&1; echo "no-share rc $?"
PYTHONPATH=/tmp/site timeout 150 python3 docs/perf/2026-12-04-session24/paged_profile.py $o/cases_small.json > $o/profile_small.txt 2>&1; echo "small rc $?"
cat $o/profile_*.txt | grep -v Warning | head -80
date -u | tee -a $o/gpu.txt
tar czf $OUT/call5.tgz -C /tmp call5
