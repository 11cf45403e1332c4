#!/usr/bin/env bash
# Session 28, call 2 (device): experiment 60 (the cost model's longest mma.sync tile streaming alone)
#  1. bench/compare.sh main (a3cdb10's CLI) / e60 over the two presets whose rows it re-plans
#     (chunkattn-t3: the fully shared rows; private: b4_g4_16k) and the shapes; the rows whose plans
#     do not change are the call's drift.
#  2. The committed run of this commit's CLI and wheel (bench/committed_run.sh).
set -u
o=$OUT/ab; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $OUT/gpu.txt
timeout 120 bench/compare.sh $o main=.device/main/chunktree e60=.device/final/chunktree -- chunkattn-t3 private > $OUT/compare.log 2>&1
echo "compare rc $?"; cat $o/compare.md
bench/committed_run.sh .device/final $OUT 330
