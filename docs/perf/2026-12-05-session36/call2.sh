#!/usr/bin/env bash
# For the next session with an H200 (session 36's ran only on an H100, for the gpu-check and A/B
# runs): the committed run of dcd0198 (sessions 35-36's host code; kernels as at eed852e; the cost
# model's plans as at af1dbc2, whose one change from session 34's run is flashinfer-cascade
# p32k_b256_s256 chunktree-noshare, cut at kMaxItemTokens: predicted within +-2 %). Carry
# [".device/s36r", ".carry"]: the CLI and wheel only, so that the tree with the bundle stays under 64 MiB.
start=$SECONDS
timeout 560 bench/committed_run.sh .device/s36r $OUT 500; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
