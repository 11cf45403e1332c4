#!/usr/bin/env bash
# Session 54, call 2: exp92m (ad73297, merged into main by fast-forward) after call 1's A/B: its
# committed run on the card this call gets, then the two full seed grids (chunk-first and
# sequence-first, --strict, CUDA) that call 1's gpu-check ran out of time before. Carry
# [".device/s54m", ".carry"].
bench/committed_run.sh .device/s54m $OUT 400; rc=$?
cli=build/default/tools/chunktree
for g in full seq-first; do
  flags=--full; [ $g = seq-first ] && flags="--seq-first --full"
  $cli gentests $flags --jobs 16 /tmp/grid_$g > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/grid_$g/*.txt > /tmp/grid_$g.out 2>&1
  echo "$g grid rc $?: $(grep -c ^PASSED /tmp/grid_$g.out)/$(ls /tmp/grid_$g/*.txt | wc -l) files PASSED" | tee -a $OUT/full_grids.txt
done
exit $rc
