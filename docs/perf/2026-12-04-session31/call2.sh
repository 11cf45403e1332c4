# Session 31 call 2 (2026-12-04 20:18-20:26 UTC, same machine, warm; 71ef6d8's CLI and wheel):
#   bash docs/perf/2026-12-04-session30/next/next_calls.sh run       carry [".device/final", ".carry"]
# Output: docs/perf/2026-12-04-session31-run/ (its HBM ceiling read 4.23 TB/s: see call 3).
