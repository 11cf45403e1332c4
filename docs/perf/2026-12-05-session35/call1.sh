#!/usr/bin/env bash
# Session 35 wrote this for the next session with a device (none was lent in session 35).
# Call 1: scripts/gpu-check on the capped schedule (29fde38 and later: items ≤ kMaxItemTokens; no
# kernel change since eed852e), keeping the long-span test's printed errors (KERNEL_NOTES, session
# 35's prediction: lse ~5e-6, out ~1.6e-4 at 2^12, 2^15 and 2^20 tokens) and the step logs.
# The CLI, GPU tests and wheel built here in .device/s35. Carry [".device/s35"].
start=$SECONDS
date -u; timeout 560 scripts/gpu-check --no-build --build-dir .device/s35 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
grep -h "\[ note\|NearlyEqual" /tmp/gc/gpu-unit-tests.log > $OUT/long_span_notes.txt; cat $OUT/long_span_notes.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
