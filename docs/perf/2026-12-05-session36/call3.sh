#!/usr/bin/env bash
# Session 36, call 3 (calls 1 and 2 in one, after the budget went to failed starts; as session 34's
# call 3): the committed run of a965991, then scripts/gpu-check without the full grids in the time
# left, keeping the unit tests' notes (the long-span errors, the padding test) and the step logs.
# .device/s36c: the CLI, the GPU tests and the wheel, without the handoff probe, so that the tree
# with the bundle stays under 64 MiB (gpu-check's racecheck-probe step fails for want of it: expected).
# Carry [".device/s36c", ".carry"].
start=$SECONDS
cp .device/s36c/tools/chunktree .device/s36c/chunktree
timeout 380 bench/committed_run.sh .device/s36c $OUT 330; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
left=$((570 - (SECONDS - start)))
date -u; timeout $left scripts/gpu-check --no-build --skip-full-grid --build-dir .device/s36c --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; grep "^==" $OUT/gpu_check.txt; tail -12 $OUT/gpu_check.txt
grep -h "\[ note\|NearlyEqual\|NoPage\|tests ran\|PASSED  \]\|FAILED  \]" /tmp/gc/gpu-unit-tests.log > $OUT/unit_notes.txt; cat $OUT/unit_notes.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null; tar -C /tmp -czf $OUT/logs.tgz verbose; date -u
