# Session 31 call 4: the committed run again, on fd6ef75's ceiling (the fastest of three read
# kernels over two allocations); the CLI names this file's commit, the kernels are 67c's (549213b).
#   timeout 470 bench/committed_run.sh .device/final $OUT 330 ; tar run.tgz    carry [".device/final", ".carry"]
# Output: docs/perf/2026-12-04-session31-run2/.
