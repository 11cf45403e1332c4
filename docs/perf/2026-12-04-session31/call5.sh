# Session 31 call 5 (the device time left, ~280 s): 8d11bcb's ceilings file on the card (its six HBM
# readings), then session 30's optional diagnostic (ncu kernel durations of the cache path against the
# engine path on the private preset's two 128-tile rows), cut to fit.
#   bash docs/perf/2026-12-04-session31/call5.sh        carry [".device/final"]
set -u
.device/final/chunktree bench --preset small --ceilings-json $OUT/ceilings.json > $OUT/small.txt 2>&1; echo "bench rc $?"; cat $OUT/ceilings.json
timeout 170 bash docs/perf/2026-12-04-session30/next/next_calls.sh where-paged-loses; echo "diag rc $?"
# As run (20:42 UTC): the CLI names e71fb93-dirty, built while PERFORMANCE.md held uncommitted edits
# (docs only; committed next, 8dc8aa3). Output: call5/ (ceilings.json, small.txt, ncu_*.csv).
