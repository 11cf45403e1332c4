#!/usr/bin/env bash
# For the next session with an H200: the committed run of 7b01e68 (session 37's final code: kernels
# as at eed852e, plans as at dcd0198; the Planner change is host code the run does not call), now
# with `host_machine.txt` (bench/host_machine.sh), so that the decode loop's host share can be read
# against the host's speed. Session 37's run (dcd0198) had a slow host: b64_p4k's host work 13.7 %
# of the step. Prediction: every `chunktree bench` row within the run-to-run spread of session 37's
# (median 0.99-1.01), and the host share at the host's speed (5-7 % on a host whose reference loop
# takes ~0.7-0.9 s, ~12-14 % at ~1.5 s). Carry [".device/s37r", ".carry"] (the tree with both is
# ~60 MiB of the 64).
start=$SECONDS
timeout 560 bench/committed_run.sh .device/s37r $OUT 500; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
