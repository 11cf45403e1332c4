#!/usr/bin/env bash
# Session 50, call 4: a committed run of main (07b10f2; the kernels of 886272b, with 53909f2's keyed
# kv_maps cache) on the card this call gets: bench/committed_run.sh with the CLI (gzipped) and the wheel
# built from it. Carry [".device/s50z", ".carry"].
mkdir -p /tmp/b/wheel && gunzip -c .device/s50z/chunktree.gz > /tmp/b/chunktree && chmod +x /tmp/b/chunktree &&
  cp .device/s50z/wheel/*.whl /tmp/b/wheel/ && bench/committed_run.sh /tmp/b $OUT 450
