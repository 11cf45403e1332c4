#!/usr/bin/env bash
# For the next session (written in session 61): experiment 106 (branch exp106, ca342cc: the
# partition's price on the card's HBM; `.device/s61e`: CLI, GPU tests and wheel) against main
# (8121633's source; `.device/s60m`, the CLI of session 61's committed run), in both orders over the
# presets whose plans it changes on an H100 (spec-decode, hydragen-micro, tree) and two it must leave
# alone (gqa-llama3, flashinfer-cascade); exp106's GPU unit tests first (its kernels are main's; the
# tests' partitioned plans now split where the card's HBM says so), then its quick grids and
# sanitizers while time is left. On an H200 no plan changes (the host's copy of every preset's plans),
# so there the A/B is a check of that. Carry [".device/s60m", ".device/s61e"]. ~480 s with a 90 s
# start. Prediction: KERNEL_NOTES, experiment 106.
CALL_S=${CALL_S:-480} PRESETS=${PRESETS:-"spec-decode hydragen-micro tree gqa-llama3 flashinfer-cascade"} \
  exec bench/ab_call.sh r106 .device/s61e/chunktree.gz .device/s61e/chunktree_gpu_tests.xz main=.device/s60m/chunktree.gz \
  e106=.device/s61e/chunktree.gz
