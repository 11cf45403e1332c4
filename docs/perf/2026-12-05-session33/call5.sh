#!/usr/bin/env bash
# Session 33, call 5: the committed run of main with experiments 69 and 68 merged (the CLI and wheel
# built here from 9036d1e in .device/final). Carry [".device/final", ".carry"].
timeout 370 bench/committed_run.sh .device/final $OUT 300; echo "committed_run rc $?"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
