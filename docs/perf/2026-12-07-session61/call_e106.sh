#!/usr/bin/env bash
# For the next session (written in session 61): experiments 106 (branch exp106, ca342cc: the
# partition's price on the card's HBM; `.device/s61e`) and 107 (branch exp107, b71934c: 106 plus the
# split's price on the card's HBM; `.device/s61f`: CLI, GPU tests and wheel) against main (8121633's
# source; `.device/s60m`, the CLI of session 61's committed run), in both orders over the presets
# whose plans they change on an H100 (spec-decode, hydragen-micro, tree, flashinfer-cascade) and one
# they must leave alone (gqa-llama3); exp107's GPU unit tests first (its kernels are main's), then its
# quick grids and sanitizers while time is left. On an H200 no plan changes (the host's copy of every
# preset's plans), so there the A/B checks that. Carry [".device/s60m", ".device/s61e", ".device/s61f"].
# ~540 s with a 90 s start. Predictions: KERNEL_NOTES, experiments 106 and 107.
CALL_S=${CALL_S:-540} PRESETS=${PRESETS:-"spec-decode hydragen-micro tree flashinfer-cascade gqa-llama3"} \
  exec bench/ab_call.sh r106 .device/s61f/chunktree.gz .device/s61f/chunktree_gpu_tests.xz main=.device/s60m/chunktree.gz \
  e106=.device/s61e/chunktree.gz e107=.device/s61f/chunktree.gz
