#!/usr/bin/env bash
# Session 56: one call whose work depends on the card that comes, since a refused start costs 90–180 s
# of device time and blocks that kind for ~10 minutes, so the card cannot be chosen by asking again.
# - An H200: main's committed run with the two full seed grids (`.device/s54c`: ad73297's CLI and
#   wheel, as session 54's run on an H100). Main's kernels have not run on the card
#   that issues 11 and 13 name. The run is packed into $OUT/partial.tgz every 15 s, so that a call cut
#   short by the session's device time still brings back what it measured.
# - An H100: experiment 95rp's sweep at the k the fit lacks (70–110) beside 0, 66 and the model's,
#   on spec-decode, hydragen-micro and gqa-llama3 (session 55's next_calls.md, item 2).
# Carry [".device/s54c", ".carry", ".device/s56"] (.device/s56/e95rp.xz: exp95rp 9b2e97e's CLI).
# H100_CALL=SCRIPT runs SCRIPT on an H100 instead of the sweep (carry what it needs in place of s56).
name=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$name"; date -u
case $name in
  *H200*) ;;
  *) [ -n "${H100_CALL:-}" ] && exec bash "$H100_CALL"  # another call for an H100 (next_calls.md)
     SWEEP_BUILD=.device/s56 SWEEP_S=${SWEEP_S:-420} CALL_S=${SWEEP_S:-420} SETTINGS=${SETTINGS:-"0 80 96 110 66 model"} \
       exec bash docs/perf/2026-12-06-session55/call_95rp.sh ;;
esac
cr=/tmp/committed && rm -rf $cr && mkdir -p $cr
(while sleep 15; do [ -d $cr/run ] && tar -C $cr -czf /tmp/partial.tgz run 2> /dev/null && mv /tmp/partial.tgz $OUT/partial.tgz; done) &
packer=$!
bench/committed_run.sh .device/s54c $cr ${RUN_ALL_S:-400} --full-grids; rc=$?
kill $packer; wait $packer 2> /dev/null
if [ -f $cr/run.tgz ]; then cp $cr/run.tgz $OUT/ && rm -f $OUT/partial.tgz; fi
date -u
exit $rc
