#!/usr/bin/env bash
# Session 52, call 1: a committed run of main 9880aed on the card this call gets (asked as
# nvidia-h200), then ncu profiles of the no-share rows of issue 11 (ours and torch SDPA's kernels,
# same call). Carry [".device/s52z", ".carry"].
bench/committed_run.sh .device/s52z $OUT 450; rc=$?
timeout 170 bench/profile.sh $OUT/prof noshare_b32_mha_4k noshare_b512_gqa8x1_1k sdpa_noshare_b32_mha_4k sdpa_noshare_b512_gqa8x1_1k
tar -C $OUT -czf $OUT/prof.tgz prof && rm -rf $OUT/prof
exit $rc
