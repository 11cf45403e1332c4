#!/usr/bin/env bash
# Session 29, call 1 (device): experiment 64, the no-share rows' tiles dealt by the hardware.
# One CLI (e7cefa0 + the diagnostic switch), three passes: main (persistent grid), one (one CTA per
# tile: CHUNKTREE_EXP_ONE_PER_TILE=1), main again (the drift).
set -u
o=$OUT/ab; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu,clocks.sm,clocks.mem --format=csv,noheader; date -u; } | tee $OUT/gpu.txt
timeout 420 bench/compare.sh $o main=.device/e64/chunktree one=.device/e64/one.sh mainB=.device/e64/chunktree -- no-share private chunkattn-t3 small > $OUT/compare.log 2>&1
echo "compare rc $?"; cat $o/compare.md
tar -C $OUT -czf $OUT/ab.tgz ab compare.log gpu.txt && rm -rf $o
