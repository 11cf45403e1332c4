#!/usr/bin/env bash
# Not run: every start from 03:22 to 04:25 UTC was refused (six, ~90 s of budget each); call3.sh ran both.
# Session 34, call 1: the committed run of main with experiments 69 and 68 merged (e3b14a6's code;
# the CLI, GPU tests and wheel built here in .device/run34). Carry [".device/run34", ".carry"].
timeout 560 bench/committed_run.sh .device/run34 $OUT 400; echo "committed_run rc $?"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
