#!/usr/bin/env bash
# Session 56: one call whose work depends on the card that comes, since a refused start costs 90–180 s
# of device time and blocks that kind for ~10 minutes, so the card cannot be chosen by asking again.
# - An H200: main's committed run and the full grids (session 55's call_h200_run.sh; main's kernels
#   are ad73297's and have not run on the card that issues 11 and 13 name).
# - An H100: experiment 95rp's sweep at the k the fit lacks (70–110) beside 0, 66 and the model's,
#   on spec-decode, hydragen-micro and gqa-llama3 (session 55's next_calls.md, item 2).
# Carry [".device/s54c", ".carry", ".device/s56"] (.device/s56/e95rp.xz: exp95rp 9b2e97e's CLI).
name=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$name"; date -u
case $name in
  *H200*) exec bash docs/perf/2026-12-06-session55/call_h200_run.sh ;;
  *) SWEEP_BUILD=.device/s56 SWEEP_S=${SWEEP_S:-420} CALL_S=${SWEEP_S:-420} SETTINGS=${SETTINGS:-"0 80 96 110 66 model"} \
       exec bash docs/perf/2026-12-06-session55/call_95rp.sh ;;
esac
