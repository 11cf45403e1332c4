#!/usr/bin/env bash
# For the next session with an H200: the committed run of e2ef71d (experiment 70 kept: the merge chained
# after the forked stream's join; kernels otherwise as at eed852e), CLI and wheel built in .device/s38r.
# Carry [".device/s38r", ".carry"] (the tree with both is ~60 MiB of the 64). Prediction against
# session 37's run (dcd0198): the `chunktree bench` rows with both tile kinds (gqa-llama3, spec-decode,
# tree, hydragen s64) within the run-to-run spread (call 3's A/B: 0.98-1.01); the decode loop's
# chunktree-graph steps 1-2 % faster in their GPU part (-11 to -23 us a step on an H100: session 38
# call 2); every other row within the spread; host shares at the host's speed (host_machine.txt).
start=$SECONDS
timeout 560 bench/committed_run.sh .device/s38r $OUT 500; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
