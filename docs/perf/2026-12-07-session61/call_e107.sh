#!/usr/bin/env bash
# For the next session (written in session 61): experiments 106 and 107 (branch exp107, a003bf1: the
# partition's and the split's prices on the card's HBM; `.device/s61f`: CLI, GPU tests and wheel)
# against main (8121633's source; `.device/s60m`, the CLI of session 61's committed run), in both
# orders over the presets whose plans they change on an H100 (spec-decode, hydragen-micro and tree:
# 106; flashinfer-cascade: 107; no row is moved by both, so each row's change is one experiment's)
# and one they must leave alone (gqa-llama3); exp107's GPU unit tests first (its kernels are main's),
# then its quick grids and sanitizers while time is left. On an H200 no plan changes (checked on the
# host over every preset's plans and 23000 random ones), so there the A/B checks that.
# Carry [".device/s60m", ".device/s61f"]. ~450 s with a 90 s start. Predictions: KERNEL_NOTES,
# experiments 106 and 107.
CALL_S=${CALL_S:-480} PRESETS=${PRESETS:-"spec-decode hydragen-micro tree flashinfer-cascade gqa-llama3"} \
  exec bench/ab_call.sh r107 .device/s61f/chunktree.gz .device/s61f/chunktree_gpu_tests.xz main=.device/s60m/chunktree.gz \
  e107=.device/s61f/chunktree.gz
