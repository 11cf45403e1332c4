#!/usr/bin/env bash
# NOT RUN: session 15 had too little device time left to start a machine for it (kept for the next session).
# Session 15, call 5: the one row that the committed run found slower beyond its spread
# (flashinfer-cascade p32k_b256_s256, chunktree-noshare: 18366 -> 25281 us), timed with and without
# experiment 31a's -ftz (noftz: the same tree with the property commented out), alternating.
set -u
d=.device/s15
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for c in exp31a noftz exp31a noftz; do
  $d/$c bench --batch 256 --heads 32 --kv-heads 32 --prefix 32768 --suffix 256 > $OUT/r/$c.txt 2>&1
  echo "$c: $(grep -E 'chunktree-noshare' $OUT/r/$c.txt | tr -s ' ')"
done
date -u
