# Session 31 call 3 (2026-12-04 ~20:28 UTC, a fresh machine: the lease started cold): which read
# kernel reads HBM fastest, and does the reading depend on the allocation? call3/hbm_probe.cu, built
# here with nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a, carried as .device/probe:
#   nvidia-smi --query-gpu=clocks.sm,clocks.mem,clocks.max.mem,power.draw,temperature.gpu --format=csv
#   .device/probe/hbm_probe; .device/probe/hbm_probe | grep "round 0"
# Output: call3/summary.txt (transcribed from the call's output tail, which held all of it).
