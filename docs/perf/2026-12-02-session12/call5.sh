#!/usr/bin/env bash
# Session 12, call 5: the parts of scripts/gpu-check that calls 3 and 4 did not run on d73855c's
# build (experiment 27): the full and sequence-first grids (quick and full) with --strict, and the
# racecheck probe of the hand-off variants.
set -u
cli=build/default/tools/chunktree
probe=build/default/tests/chunktree_handoff_probe
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
$cli gentests --seq-first --quick /tmp/sq > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/sq/*.txt > $OUT/r/seq_quick.txt 2>&1; echo "seq-first quick rc $? $(grep -c ^PASSED $OUT/r/seq_quick.txt)/$(ls /tmp/sq/*.txt | wc -l)"
$cli gentests --full --jobs 16 /tmp/f > /dev/null && timeout 120 $cli check --strict --backend cuda --jobs 16 /tmp/f/*.txt > $OUT/r/full.txt 2>&1; echo "full rc $? $(grep -c ^PASSED $OUT/r/full.txt)/$(ls /tmp/f/*.txt | wc -l)"; rm -rf /tmp/f
$cli gentests --seq-first --full --jobs 16 /tmp/sf > /dev/null && timeout 120 $cli check --strict --backend cuda --jobs 16 /tmp/sf/*.txt > $OUT/r/seq_full.txt 2>&1; echo "seq-first full rc $? $(grep -c ^PASSED $OUT/r/seq_full.txt)/$(ls /tmp/sf/*.txt | wc -l)"; rm -rf /tmp/sf
for v in syncthreads mbarrier-noinc mbarrier-release refill; do
  timeout 30 compute-sanitizer --tool racecheck $probe $v > $OUT/r/probe-$v.txt 2>&1; echo "probe $v rc $? $(grep -o 'SUMMARY: [0-9]* hazard' $OUT/r/probe-$v.txt)"
done
grep -c ^PASSED $OUT/r/full.txt > /dev/null; tar -C $OUT -czf $OUT/call5.tgz r && rm -rf $OUT/r; date -u
