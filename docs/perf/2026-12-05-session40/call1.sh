#!/usr/bin/env bash
# Session 40, call 1 (session 39's next_call.sh): the committed run of main with experiment 73 gated (the split search's even
# cuts beside a decode step's short private spans), CLI and wheel in .device/s40r (.device/BUILT
# names the commit). (Its GPU unit tests, the new one included, run in call 2's gpu-check: the
# repository's docs/perf and this carry fill the 64 MiB a call carries.) Carry [".device/s40r", ".carry"]. Prediction against session 39's run (a0506a1; on an H100 if
# one comes again, else against session 37's H200 run for every row but the decode loop's): every
# `chunktree bench` row the same (no preset row re-plans), the decode loop's b64_p4k chunktree-graph
# step's GPU part ~14 % shorter (session 39 call 5: 1063 -> 909 us on an H100), its other cases
# unchanged; so b64_p4k's host share rises (the same host work over a shorter step). The engine path's
# b64_p4k (chunktree-paged-graph) plans through the same search: its step's GPU part ~10-15 % shorter too.
start=$SECONDS
timeout 500 bench/committed_run.sh .device/s40r $OUT 440; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
