#!/usr/bin/env bash
# Session 39 call 2: the committed run of 25eec21 (71b and 72 kept on session 38's main: the merge's
# width by the plan's longest merge list, write_kv 16 bytes a thread), CLI and wheel in .device/s39r.
# Carry [".device/s39r", ".carry"]. Prediction against session 37's run (dcd0198, H200): every
# `chunktree bench` row within the run-to-run spread (call 1's compare: 0.988-1.004); the decode
# loop's chunktree-graph steps' GPU part 2-7 % faster (70: -0.3 to -0.7 us a layer; 71b+72: -0.5
# b64_p4k, -1.8 b256_p2k, -1.2 b8_p1k a layer on an H100); host shares at the host's speed.
start=$SECONDS
timeout 560 bench/committed_run.sh .device/s39r $OUT 500; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
