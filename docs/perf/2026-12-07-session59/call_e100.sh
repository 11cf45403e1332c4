#!/usr/bin/env bash
# For the next call (written in session 59): experiment 100 against main. `.device/s59b/e100.gz` is
# branch exp100 (d1cb402: 97's partition with 99's row-group price, every tile claimed, the first
# included, and claims wherever a tile streams more than one stage or each slot has three tiles);
# with CHUNKTREE_PROBE_CLAIM_ALL=1 it claims at any tile count too (label e100all). Main's CLI is
# `.device/s54c/chunktree.gz` (ad73297). Carry [".device/s54c", ".device/s59b"]. Prediction:
# KERNEL_NOTES, experiment 100. Order:
#  1. e100's GPU unit tests;
#  2. bench/compare.sh main / e100 / e100all over the presets with mixed plans, then the reverse;
#  3. e100's grids and sanitizers while time is left.
# bench/ab_call.sh runs the steps; results land in $OUT/r100.tgz. CALL_S (default 560), UNIT_FILTER,
# PRESETS shorten it.
PRESETS=${PRESETS:-"spec-decode hydragen-micro gqa-llama3 tree flashinfer-cascade chunkattn-t3"} \
  exec bench/ab_call.sh r100 .device/s59b/e100.gz .device/s59b/e100_gpu_tests.xz main=.device/s54c/chunktree.gz \
  e100=.device/s59b/e100.gz,CHUNKTREE_PROBE_LOG=1 e100all=.device/s59b/e100.gz,CHUNKTREE_PROBE_CLAIM_ALL=1
