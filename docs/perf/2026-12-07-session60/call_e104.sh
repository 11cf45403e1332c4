#!/usr/bin/env bash
# For the next call (written in session 60): experiment 104 (branch exp104, 3ba7582;
# `.device/s60/e104.gz`) against main (ad73297's CLI, `.device/s54c`) and e103 (`.device/s60/e103.gz`),
# in both orders over the presets whose rows claims won or lost; then e104's quick grids and
# sanitizers while time is left (racecheck and synccheck matter here: the chained launch and the
# last CTA's wait are new). Carry [".device/s54c", ".device/s60"]. Prediction: KERNEL_NOTES,
# experiment 104.
CALL_S=${CALL_S:-540} PRESETS=${PRESETS:-"gqa-llama3 flashinfer-cascade hydragen-micro spec-decode tree"} \
  exec bench/ab_call.sh r104 .device/s60/e104.gz .device/s60/e104_gpu_tests.xz main=.device/s54c/chunktree.gz \
  e103=.device/s60/e103.gz e104=.device/s60/e104.gz
