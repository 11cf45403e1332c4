#!/usr/bin/env bash
# For the next call (written in session 59): experiment 100 against main. `.device/s59b/e100.gz` is
# branch exp100 (d1cb402: 97's partition with 99's row-group price, every tile claimed, the first
# included, and claims wherever a tile streams more than one stage or each slot has three tiles);
# with CHUNKTREE_PROBE_CLAIM_ALL=1 it claims at any tile count too (label e100all). Main's CLI is
# `.device/s54c/chunktree.gz` (ad73297). Carry [".device/s54c", ".device/s59b"]. Prediction:
# KERNEL_NOTES, experiment 100. Order:
#  1. e100's GPU unit tests;
#  2. bench/compare.sh main / e100 / e100all over the presets with mixed plans, then the reverse;
#  3. e100's grids and sanitizers while time is left.
# Everything lands in /tmp/r100, packed into $OUT/r100.tgz after each step (a call cut short
# returns what it measured). CALL_S (default 560), UNIT_FILTER, PRESETS shorten it.
set -u
start=$SECONDS
budget=${CALL_S:-560}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x100 && rm -rf $x && mkdir -p $x/e100/tools $x/e100/tests
gunzip -c .device/s59b/e100.gz > $x/e100/tools/chunktree || exit 1
xz -dc .device/s59b/e100_gpu_tests.xz > $x/e100/tests/chunktree_gpu_tests || exit 1
gunzip -c .device/s54c/chunktree.gz > $x/main || exit 1
chmod +x $x/main $x/e100/tools/chunktree $x/e100/tests/*
printf '#!/bin/sh\nCHUNKTREE_PROBE_CLAIM_ALL=1 exec %s "$@"\n' $x/e100/tools/chunktree > $x/e100all && chmod +x $x/e100all
printf '#!/bin/sh\nCHUNKTREE_PROBE_LOG=1 exec %s "$@"\n' $x/e100/tools/chunktree > $x/e100m && chmod +x $x/e100m
$x/e100/tools/chunktree info | head -3
left() { echo $((budget - (SECONDS - start))); }
R=/tmp/r100 && rm -rf $R && mkdir -p $R
pack() { tar -C /tmp -czf $OUT/r100.tgz r100; }
trap 'pack; date -u' EXIT
timeout 150 $x/e100/tests/chunktree_gpu_tests --gtest_filter="${UNIT_FILTER:-*}" > $R/unit.txt 2>&1
rc=$?; echo "== unit tests rc $rc ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $R/unit.txt | tail -8
[ $rc -eq 0 ] || exit $rc
pack
read -ra presets <<< "${PRESETS:-spec-decode hydragen-micro gqa-llama3 tree flashinfer-cascade chunkattn-t3}"
t=$(left); [ $t -gt 60 ] && timeout $t bench/compare.sh $R/ab1 main=$x/main e100=$x/e100m e100all=$x/e100all -- "${presets[@]}" > /dev/null 2>&1
pack; cat $R/ab1/compare.md 2>/dev/null; echo "== A/B pass 1 ($((SECONDS - start)) s)"
t=$(left); [ $t -gt 150 ] && timeout $((t - 30)) bench/compare.sh $R/ab2 e100all=$x/e100all e100=$x/e100m main=$x/main -- "${presets[@]}" > /dev/null 2>&1
cat $R/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 ($((SECONDS - start)) s)"
grep -h "^probe:" $R/ab1/e100.txt 2>/dev/null | sort | uniq -c
pack
t=$(left); [ $t -gt 40 ] && timeout $t scripts/gpu-check --no-build --build-dir $x/e100 --work /tmp/gc100 --skip-full-grid \
  --only quick-grid,seq-first-quick-grid,random-trees,memcheck,racecheck,synccheck > $R/gpu_check.txt 2>&1
echo "== gpu-check rc $? ($((SECONDS - start)) s)"; grep -A9 "gpu-check summary" $R/gpu_check.txt 2>/dev/null
