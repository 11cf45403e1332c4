#!/usr/bin/env bash
# Session 60's last call: experiment 103 (branch exp103, f5a056e; `.device/s60/e103.gz`) against
# main (ad73297's CLI, `.device/s54c`) and e100 (`.device/s59b`), in both orders, over the presets
# whose rows e100 lost or won; then e103's quick grids and sanitizers while time is left. Carry
# [".device/s54c", ".device/s59b", ".device/s60"]. Prediction: KERNEL_NOTES, experiment 103.
CALL_S=${CALL_S:-540} PRESETS=${PRESETS:-"gqa-llama3 flashinfer-cascade hydragen-micro spec-decode tree"} \
  exec bench/ab_call.sh r103 .device/s60/e103.gz .device/s60/e103_gpu_tests.xz main=.device/s54c/chunktree.gz \
  e100=.device/s59b/e100.gz e103=.device/s60/e103.gz
