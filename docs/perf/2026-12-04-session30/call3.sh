#!/usr/bin/env bash
# Session 30, call 3 (device), the session's last: this commit's committed run (bench/committed_run.sh;
# its GPU unit tests passed in call 2, 78/78, on cf43ca7's identical code), packed whatever happens;
# then compute-sanitizer memcheck, racecheck and synccheck on the test whose replayed launches claim
# their first tiles (experiment 67b), within the call's 600 s. Call 2 ran out of time after its A/B
# (its run never packed); this call runs the committed run alone first.
set -u
o=$OUT; start=$SECONDS
timeout 440 bench/committed_run.sh .device/final $o 330; echo "committed_run rc $? after $((SECONDS - start)) s"
[ -d $o/run ] && tar -C $o -czf $o/run.tgz run && rm -rf $o/run
t=.device/final/tests/chunktree_gpu_tests; f=CudaPaged.ReplayedGridsRunEveryTileAtAnyLiveCount
for tool in memcheck racecheck synccheck; do
  left=$((580 - (SECONDS - start))); [ $left -gt 20 ] || { echo "$tool: no time left"; continue; }
  timeout $(( left < 90 ? left : 90 )) compute-sanitizer --tool $tool --error-exitcode 1 $t --gtest_filter=$f > $o/$tool.txt 2>&1
  echo "$tool rc $? after $((SECONDS - start)) s"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" $o/$tool.txt | tail -3
done
