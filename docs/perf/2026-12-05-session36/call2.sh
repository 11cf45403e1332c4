#!/usr/bin/env bash
# Session 36, call 2 (on the machine call 1 left warm): the committed run of a965991, whose changed
# plans (KERNEL_NOTES session 36: np1024_ns768 split 512 -> 256, predicted -3 to -5 %; five
# chunktree-noshare comparison rows within +-2 %) it measures beside the peers. Carry
# [".device/s36r", ".carry"]: the CLI and wheel only, so that the tree with the bundle stays under 64 MiB.
start=$SECONDS
timeout 560 bench/committed_run.sh .device/s36r $OUT 500; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
