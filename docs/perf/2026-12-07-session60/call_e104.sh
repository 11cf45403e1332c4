#!/usr/bin/env bash
# For the next call (written in session 60): experiments 104 and 105 as they would merge (branch
# exp104m, 3d978d2: exp104 c1c59c2 without its probes, with main, exp100m's DESIGN.md and claims test
# merged in, 105's host rule, and a review's tidying (the claims' end in one helper; comments);
# `.device/s60m`: CLI, GPU tests and wheel) against main (ad73297's CLI, `.device/s54c`) and e103
# (`.device/s60/e103.gz`), in both orders over the presets whose rows claims won or lost; then the
# quick grids and sanitizers while time is left (racecheck and synccheck matter here: the chained
# launch and the last CTA's wait are new). exp104m's unit tests include the claims test's graph
# replay, which covers the chained launch's programmatic edge. Carry [".device/s54c", ".device/s60",
# ".device/s60m"]. Prediction: KERNEL_NOTES, experiment 104.
CALL_S=${CALL_S:-540} PRESETS=${PRESETS:-"gqa-llama3 flashinfer-cascade hydragen-micro spec-decode tree"} \
  exec bench/ab_call.sh r104 .device/s60m/chunktree.gz .device/s60m/chunktree_gpu_tests.xz main=.device/s54c/chunktree.gz \
  e103=.device/s60/e103.gz e104=.device/s60m/chunktree.gz
