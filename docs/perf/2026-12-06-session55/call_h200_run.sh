#!/usr/bin/env bash
# Session 55: the committed run of main's kernels (ad73297, `.device/s54c`: CLI and wheel built from
# the clean commit) on the H200 that issues 11 and 13 name, then the two full seed grids (chunk-first
# and sequence-first, --strict, CUDA). Only on an H200: session 54's run of this code was on an H100.
# Carry [".device/s54c", ".carry"].
name=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$name"
case $name in *H200*) ;; *) echo "not an H200: no committed run"; exit 3 ;; esac
bench/committed_run.sh .device/s54c $OUT 400; rc=$?
cli=build/default/tools/chunktree
for g in full seq-first; do
  flags=--full; [ $g = seq-first ] && flags="--seq-first --full"
  $cli gentests $flags --jobs 16 /tmp/grid_$g > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/grid_$g/*.txt > /tmp/grid_$g.out 2>&1
  echo "$g grid rc $?: $(grep -c ^PASSED /tmp/grid_$g.out)/$(ls /tmp/grid_$g/*.txt | wc -l) files PASSED" | tee -a $OUT/full_grids.txt
done
exit $rc
