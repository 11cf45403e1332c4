#!/usr/bin/env bash
# For a later call (written in session 59), on the machine that ran call_e100.sh: experiment 101
# (`.device/s59d/e101.gz`, branch exp101 3700a57: a one-slot claims queue, the ticket drawn once it
# frees) against experiment 100 (`.device/s59b/e100.gz`), both with CHUNKTREE_PROBE_CLAIM_ALL=1 so
# that spec-decode b64 s8 is claimed too. Carry [".device/s59b", ".device/s59d"]. Prediction:
# KERNEL_NOTES, experiment 101. e101's GPU unit tests first (a deadlock of the queue shows as the
# timeout), then bench/compare.sh both orders. Packed into $OUT/r101.tgz after each step.
set -u
start=$SECONDS
budget=${CALL_S:-400}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x101 && rm -rf $x && mkdir -p $x/e101/tools $x/e101/tests
gunzip -c .device/s59d/e101.gz > $x/e101/tools/chunktree || exit 1
xz -dc .device/s59d/e101_gpu_tests.xz > $x/e101/tests/chunktree_gpu_tests || exit 1
gunzip -c .device/s59b/e100.gz > $x/e100 || exit 1
chmod +x $x/e100 $x/e101/tools/chunktree $x/e101/tests/*
for b in e100:$x/e100 e101:$x/e101/tools/chunktree; do
  printf '#!/bin/sh\nCHUNKTREE_PROBE_CLAIM_ALL=1 exec %s "$@"\n' ${b#*:} > $x/${b%%:*}all && chmod +x $x/${b%%:*}all
done
left() { echo $((budget - (SECONDS - start))); }
R=/tmp/r101 && rm -rf $R && mkdir -p $R
pack() { tar -C /tmp -czf $OUT/r101.tgz r101; }
trap 'pack; date -u' EXIT
timeout 150 $x/e101/tests/chunktree_gpu_tests --gtest_filter="${UNIT_FILTER:-*}" > $R/unit.txt 2>&1
rc=$?; echo "== unit tests rc $rc ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $R/unit.txt | tail -8
[ $rc -eq 0 ] || exit $rc
pack
read -ra presets <<< "${PRESETS:-spec-decode hydragen-micro gqa-llama3}"
t=$(left); [ $t -gt 60 ] && timeout $t bench/compare.sh $R/ab1 e100all=$x/e100all e101all=$x/e101all -- "${presets[@]}" > /dev/null 2>&1
pack; cat $R/ab1/compare.md 2>/dev/null; echo "== A/B pass 1 ($((SECONDS - start)) s)"
t=$(left); [ $t -gt 60 ] && timeout $t bench/compare.sh $R/ab2 e101all=$x/e101all e100all=$x/e100all -- "${presets[@]}" > /dev/null 2>&1
cat $R/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 ($((SECONDS - start)) s)"
