# Session 31 call 1 (2026-12-04 20:12-20:18 UTC, the H200, 71ef6d8's build = 67c's code):
#   bash docs/perf/2026-12-04-session30/next/next_calls.sh gpu-check      carry [".device/gc"]
# Output: call1/gpu_check.txt.
