#!/usr/bin/env bash
# Session 50, call 6 (12:19 UTC, the machine of call 5, warm): experiment 88 on eager launches, whose
# flag is null (never loaded): `chunktree bench` spec-decode and no-share, main (07b10f2's CLI, gzipped
# in .device/s50z) / e88 (.device/s50e88c) / main / e88. Carry [".device/s50z", ".device/s50e88c"].
# Sent as one command line; this is that line, laid out.
set -u; date -u; gunzip -c .device/s50z/chunktree.gz > /tmp/ctm && chmod +x /tmp/ctm; mkdir -p $OUT/c6; s=$SECONDS
for p in main e88 main2 e882; do
  case $p in main*) c=/tmp/ctm;; *) c=.device/s50e88c/chunktree;; esac
  for pr in spec-decode no-share; do
    timeout 60 $c bench --preset $pr --csv /tmp/x.csv >/dev/null 2>&1 || echo "$p $pr failed"; tail -n +2 /tmp/x.csv >> $OUT/c6/$p.csv
  done
  echo "$p $((SECONDS-s)) s"
done
# (then a table of the chunktree rows: the four medians and (e88 + e88) / (main + main))
