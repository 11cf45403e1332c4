#!/usr/bin/env bash
# Session 34, call 3 (calls 1 and 2 in one, after six refused starts): the committed run of eed852e
# (the kernels of e3b14a6 = experiments 69 and 68; session 34's host fixes), then scripts/gpu-check on
# the same build in the time left, keeping its logs (the long-span test's printed errors, the step
# logs if the call's limit cuts it), then the --strict checks again with -v over the grids it made.
# The CLI, GPU tests and wheel built here in .device/s34 (one copy of the CLI: the tree with the
# bundle must stay under 64 MiB). Carry [".device/s34", ".carry"].
start=$SECONDS
cp .device/s34/tools/chunktree .device/s34/chunktree
timeout 380 bench/committed_run.sh .device/s34 $OUT 330; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
left=$((565 - (SECONDS - start)))
date -u; timeout $left scripts/gpu-check --no-build --build-dir .device/s34 --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -16 $OUT/gpu_check.txt
grep -h "\[ note\|NearlyEqual" /tmp/gc/gpu-unit-tests.log > $OUT/long_span_notes.txt; cat $OUT/long_span_notes.txt
mkdir -p /tmp/verbose; cp /tmp/gc/*.log /tmp/verbose/ 2>/dev/null
for grid in quick seq_quick trees large; do
  [ $((SECONDS - start)) -lt 580 ] && ls /tmp/gc/$grid/*.txt > /dev/null 2>&1 || continue
  timeout 10 .device/s34/tools/chunktree check --strict -v --backend cuda --jobs 16 /tmp/gc/$grid/*.txt > /tmp/verbose/$grid.txt 2>&1
done
tar -C /tmp -czf $OUT/logs.tgz verbose; echo "done at $((SECONDS - start)) s"
