#!/usr/bin/env bash
# Session 58: experiment 97 (branch exp97, de65d88: experiment 96's claimed mma.sync tiles with 95rp's
# SM partition and its probe), swept by call_95rp.sh over k = 0 (no partition: experiment 96's
# behaviour), 66, 80, 96 and the model's choice on spec-decode, hydragen-micro and gqa-llama3, then
# exp97's GPU unit tests and grids in what time is left. Run on the machine that ran call_e96.sh, at
# once, so that k 0 here is tied to main's figures there. Carry [".device/s58"] (e95rp.gz: exp97's
# CLI; e95rp_gpu_tests.xz: its GPU tests).
SWEEP_BUILD=.device/s58 SETTINGS=${SETTINGS:-"0 66 80 96 model"} SWEEP_S=${SWEEP_S:-330} CALL_S=${CALL_S:-560} \
  exec bash docs/perf/2026-12-06-session55/call_95rp.sh
