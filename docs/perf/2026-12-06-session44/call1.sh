#!/usr/bin/env bash
# Session 44, call 1: experiment 79f (branch exp79f: 79c's window, with the stages inside the item's
# first run issued by thread 0 from uniform registers where its rows are the maps' rows of D
# elements) in .device/s44f beside main (.device/s41c): bench/ab_decode_step.sh; then, if no
# compare.sh row of 79f is more than 2 % slower than main's, the whole scripts/gpu-check of 79f.
# Carry [".device/s44f", ".device/s41c"]. Prediction: KERNEL_NOTES session 44.
set -u
start=$SECONDS
limit=${1:-600}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench/ab_decode_step.sh $OUT main=.device/s41c e79f=.device/s44f
worst=$(awk -F'|' 'NR > 2 && $7 ~ /[0-9]/ {print $7}' $OUT/ab/compare.md | sort -n | head -1)
echo "worst main/e79f ratio: $worst"
(cd $OUT && tar -czf /tmp/ab_part.tgz . && rm -rf ./* && mv /tmp/ab_part.tgz $OUT/)  # back even if the call is cut short
if awk -v w="$worst" 'BEGIN {exit !(w >= 0.98)}'; then
  left=$((limit - 20 - (SECONDS - start)))
  timeout $left scripts/gpu-check --no-build --build-dir .device/s44f --work /tmp/gc > $OUT/gpu_check.txt 2>&1
  echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
  mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
  (cd $OUT && tar -czf /tmp/gc.tgz gpu_check.txt verbose && rm -rf gpu_check.txt verbose && mv /tmp/gc.tgz $OUT/)
fi
date -u
