#!/usr/bin/env bash
# Session 54, call 3 (main ad73297, experiment 92 merged; asked as nvidia-h200): ncu profiles of
# issue 11's no-share rows (ours and torch SDPA's kernels, same call), then, only if this call got
# an H200, a committed run of the same clean build (`.device/s54c`: the CLI and wheel of `.device/s54m`). Carry [".device/s54c", ".carry"].
set -u
mkdir -p build/default/tools && gunzip -c .device/s54c/chunktree.gz > build/default/tools/chunktree && chmod +x build/default/tools/chunktree || exit 1
card=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$card"; date -u
timeout 170 bench/profile.sh $OUT/prof noshare_b32_mha_4k noshare_b512_gqa8x1_1k sdpa_noshare_b32_mha_4k sdpa_noshare_b512_gqa8x1_1k
tar -C $OUT -czf $OUT/prof.tgz prof && rm -rf $OUT/prof
case $card in *H200*) bench/committed_run.sh .device/s54c $OUT 330 ;; *) echo "not an H200: no committed run" ;; esac
