#!/usr/bin/env bash
# For a later call (written in session 59), on the machine that ran call_e100.sh: experiment 101
# (`.device/s59d/e101.gz`, branch exp101 3700a57: a one-slot claims queue, the ticket drawn once it
# frees) against experiment 100 (`.device/s59b/e100.gz`), both with CHUNKTREE_PROBE_CLAIM_ALL=1 so
# that spec-decode b64 s8 is claimed too. Carry [".device/s59b", ".device/s59d"]. Prediction:
# KERNEL_NOTES, experiment 101. bench/ab_call.sh runs e101's GPU unit tests first (a deadlock of the
# queue shows as their timeout), then bench/compare.sh both orders; results land in $OUT/r101.tgz.
CALL_S=${CALL_S:-400} GPU_CHECK=0 PRESETS=${PRESETS:-"spec-decode hydragen-micro gqa-llama3"} \
  exec bench/ab_call.sh r101 .device/s59d/e101.gz .device/s59d/e101_gpu_tests.xz \
  e100all=.device/s59b/e100.gz,CHUNKTREE_PROBE_CLAIM_ALL=1 e101all=.device/s59d/e101.gz,CHUNKTREE_PROBE_CLAIM_ALL=1
