#!/usr/bin/env bash
# Session 51, call 3 (on call 2's machine if still warm): experiment 89 on eager launches (their flag
# is null): `chunktree bench` spec-decode and no-share, 2d950d3's CLI (gzipped in .device/s51mz) /
# 3e386ac's (main with 89, .device/s51z) / again. Carry [".device/s51z", ".device/s51mz"].
set -u
date -u; s=$SECONDS
gunzip -c .device/s51z/chunktree.gz > /tmp/ct89 && gunzip -c .device/s51mz/chunktree.gz > /tmp/ctm && chmod +x /tmp/ct89 /tmp/ctm; mkdir -p $OUT/eager
for p in main e89 main2 e892; do
  case $p in main*) c=/tmp/ctm;; *) c=/tmp/ct89;; esac
  for pr in spec-decode no-share; do
    timeout 60 $c bench --preset $pr --csv /tmp/x.csv >/dev/null 2>&1 || echo "$p $pr failed"; tail -n +2 /tmp/x.csv >> $OUT/eager/$p.csv
  done
  echo "$p $((SECONDS-s)) s"
done
