#!/usr/bin/env bash
# Session 35 wrote this for the next session with a device. Call 2 (on the machine call 1 left warm):
# the committed run of the capped schedule, whose one changed plan is flashinfer-cascade
# p32k_b256_s256 chunktree-noshare (predicted within ±2 % of session 34's run). Carry
# [".device/s35", ".carry"]; one copy of the CLI, so that the tree with the bundle stays under 64 MiB.
start=$SECONDS
cp .device/s35/tools/chunktree .device/s35/chunktree
timeout 560 bench/committed_run.sh .device/s35 $OUT 500; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
