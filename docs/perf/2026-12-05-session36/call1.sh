#!/usr/bin/env bash
# Session 36, call 1: the whole scripts/gpu-check on a965991 (session 36's code: the padding rows,
# Work::one_state_per_row, the greedy-priced cost model, session 35's item cap and host checks; no
# kernel change since eed852e), keeping the long-span test's printed errors (KERNEL_NOTES session
# 35's prediction: lse ~5e-6, out ~1.6e-4 at 2^12, 2^15 and 2^20 tokens) and the step logs.
# The CLI, GPU tests and wheel built on the development machine in .device/s36. Carry [".device/s36"].
start=$SECONDS
date -u; timeout 560 scripts/gpu-check --no-build --build-dir .device/s36 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
grep -h "\[ note\|NearlyEqual\|NoPage" /tmp/gc/gpu-unit-tests.log > $OUT/long_span_notes.txt; cat $OUT/long_span_notes.txt
grep -h "tests ran\|PASSED\|FAILED" /tmp/gc/gpu-unit-tests.log | tail -4
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
