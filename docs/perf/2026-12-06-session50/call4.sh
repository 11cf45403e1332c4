#!/usr/bin/env bash
# Session 50, call 4 (refused; kept for session 51): a committed run of main on the card this call
# gets: bench/committed_run.sh with main's CLI (gzipped) and wheel in .device/s50z (built from 588f36f
# at the end of session 50). Carry [".device/s50z", ".carry"].
mkdir -p /tmp/b/wheel && gunzip -c .device/s50z/chunktree.gz > /tmp/b/chunktree && chmod +x /tmp/b/chunktree &&
  cp .device/s50z/wheel/*.whl /tmp/b/wheel/ && bench/committed_run.sh /tmp/b $OUT 450
