#!/usr/bin/env bash
# Session 28, call 4 (device): experiment 62 (the cost model's mma.sync tail only where tiles queue)
#  1. bench/compare.sh e60 (ee4bea9's CLI) / e62 over the presets whose rows it re-plans (private,
#     flashinfer-cascade, small) and the shapes; the rows whose plans do not change are the drift.
#  2. The committed run of this commit's CLI and wheel (bench/committed_run.sh).
set -u
o=$OUT/ab; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $OUT/gpu.txt
timeout 150 bench/compare.sh $o e60=.device/e60/chunktree e62=.device/final/chunktree -- private flashinfer-cascade small > $OUT/compare.log 2>&1
echo "compare rc $?"; cat $o/compare.md
tar -C $OUT -czf $OUT/ab.tgz ab compare.log gpu.txt && rm -rf $o
bench/committed_run.sh .device/final $OUT 330
