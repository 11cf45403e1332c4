#!/usr/bin/env bash
# Session 49, call 2: the committed run of main (886272b), the first to include experiment 84d.
# Carry [".device/s49z", ".carry"]: the CLI (gzipped: carried ungzipped the call was over 64 MiB) and
# wheel built at 886272b, and FlashInfer's bundle. Prediction: no preset row moves beyond the machine's
# noise; the decode loop's engine rows (16-token consecutive pages) gain about 1 % (b64_p4k) and 7 %
# (b256_p2k) in their GPU part.
mkdir -p /tmp/b/wheel && gunzip -c .device/s49z/chunktree.gz > /tmp/b/chunktree && chmod +x /tmp/b/chunktree &&
  cp .device/s49z/wheel/*.whl /tmp/b/wheel/ && bench/committed_run.sh /tmp/b $OUT 450
