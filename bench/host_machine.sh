#!/usr/bin/env bash
# The host a run's host work runs on: machines of one card kind differ in their CPUs, and a decode
# step's host work (host-bench, the decode loop's host column, the peers' host work) moves with them.
# Prints the CPU, the load, and a fixed single-thread loop with no chunktree code in it, whose time
# says how fast this host was against another run's.
#
#   bench/host_machine.sh > OUT/host_machine.txt
lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|CPU max MHz|CPU MHz)' || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 -c 'import time
t = time.perf_counter(); s = 0
for i in range(10_000_000): s += i
print(f"reference loop (10^7 Python additions, one thread): {time.perf_counter() - t:.3f} s")'
