#!/usr/bin/env bash
# Session 59: experiments 98 and 99 against main in one call. `.device/s59/e99.gz` is branch exp99
# (experiment 97's partition and probe, 98's claims rule, 99's row-group price); with
# CHUNKTREE_PROBE_WGMMA_SMS=0 it runs no partition, which is experiment 98 (96 with the rule).
# Main's CLI is `.device/s54c/chunktree.gz` (ad73297). Carry [".device/s54c", ".device/s59"]. Order:
#  1. e99's GPU unit tests (MixedPlansClaimTheirNarrowTilesAtEveryCall runs with no partition, the
#     model's and 8 wgmma SMs);
#  2. bench/compare.sh main / e98 / e99 over the presets with mixed plans, then e99 / e98 / main;
#  3. e99's grids and sanitizers while time is left.
# Everything lands in /tmp/r59, packed into $OUT/r59.tgz after each step (a call cut short returns
# what it measured). CALL_S (default 560), UNIT_FILTER, PRESETS shorten it.
set -u
start=$SECONDS
budget=${CALL_S:-560}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x59 && rm -rf $x && mkdir -p $x/e99/tools $x/e99/tests
gunzip -c .device/s59/e99.gz > $x/e99/tools/chunktree || exit 1
xz -dc .device/s59/e99_gpu_tests.xz > $x/e99/tests/chunktree_gpu_tests || exit 1
gunzip -c .device/s54c/chunktree.gz > $x/main || exit 1
chmod +x $x/main $x/e99/tools/chunktree $x/e99/tests/*
printf '#!/bin/sh\nCHUNKTREE_PROBE_WGMMA_SMS=0 exec %s "$@"\n' $x/e99/tools/chunktree > $x/e98 && chmod +x $x/e98
printf '#!/bin/sh\nCHUNKTREE_PROBE_LOG=1 exec %s "$@"\n' $x/e99/tools/chunktree > $x/e99m && chmod +x $x/e99m
$x/e99/tools/chunktree info | head -3
left() { echo $((budget - (SECONDS - start))); }
R=/tmp/r59 && rm -rf $R && mkdir -p $R
pack() { tar -C /tmp -czf $OUT/r59.tgz r59; }
trap 'pack; date -u' EXIT
timeout 150 $x/e99/tests/chunktree_gpu_tests --gtest_filter="${UNIT_FILTER:-*}" > $R/unit.txt 2>&1
rc=$?; echo "== unit tests rc $rc ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $R/unit.txt | tail -8
[ $rc -eq 0 ] || exit $rc
pack
read -ra presets <<< "${PRESETS:-spec-decode hydragen-micro gqa-llama3 chunkattn-t3 tree}"
t=$(left); [ $t -gt 60 ] && timeout $t bench/compare.sh $R/ab1 main=$x/main e98=$x/e98 e99=$x/e99m -- "${presets[@]}" > /dev/null 2>&1
pack; cat $R/ab1/compare.md 2>/dev/null; echo "== A/B pass 1 ($((SECONDS - start)) s)"
t=$(left); [ $t -gt 150 ] && timeout $((t - 30)) bench/compare.sh $R/ab2 e99=$x/e99m e98=$x/e98 main=$x/main -- "${presets[@]}" > /dev/null 2>&1
cat $R/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 ($((SECONDS - start)) s)"
grep -h "^probe:" $R/ab1/e99.txt 2>/dev/null | sort | uniq -c
pack
t=$(left); [ $t -gt 40 ] && timeout $t scripts/gpu-check --no-build --build-dir $x/e99 --work /tmp/gc59 --skip-full-grid \
  --only quick-grid,seq-first-quick-grid,random-trees,memcheck,racecheck,synccheck > $R/gpu_check.txt 2>&1
echo "== gpu-check rc $? ($((SECONDS - start)) s)"; grep -A9 "gpu-check summary" $R/gpu_check.txt 2>/dev/null
