#!/usr/bin/env bash
# Session 59: experiments 98 and 99 against main in one call. `.device/s59/e99.gz` is branch exp99
# (experiment 97's partition and probe, 98's claims rule, 99's row-group price); with
# CHUNKTREE_PROBE_WGMMA_SMS=0 it runs no partition, which is experiment 98 (96 with the rule).
# Main's CLI is `.device/s54c/chunktree.gz` (ad73297). Carry [".device/s54c", ".device/s59"]. Order:
#  1. e99's GPU unit tests (MixedPlansClaimTheirNarrowTilesAtEveryCall runs with no partition, the
#     model's and 8 wgmma SMs);
#  2. bench/compare.sh main / e98 / e99 over the presets with mixed plans, then e99 / e98 / main;
#  3. e99's grids and sanitizers while time is left.
# bench/ab_call.sh runs the steps (this call ran them from a copy of its own, 6a3453a); results land in
# $OUT/r59.tgz. CALL_S (default 560), UNIT_FILTER, PRESETS shorten it.
exec bench/ab_call.sh r59 .device/s59/e99.gz .device/s59/e99_gpu_tests.xz main=.device/s54c/chunktree.gz \
  e98=.device/s59/e99.gz,CHUNKTREE_PROBE_WGMMA_SMS=0 e99=.device/s59/e99.gz,CHUNKTREE_PROBE_LOG=1
