#!/usr/bin/env bash
# Session 57: experiment 96, the mma.sync tiles claimed at run time beside the wgmma tiles
# (KERNEL_NOTES session 57 has the prediction). `.device/s57b`: exp96's CLI, GPU tests and probe
# (gzipped); main's CLI is `.device/s54c/chunktree.gz` (ad73297, main's kernels). Carry
# [".device/s54c", ".device/s57b"]. On any card:
#  1. the GPU unit tests of exp96 (a hang of the claims would show as the timeout): no timing of a
#     kernel that is wrong;
#  2. bench/compare.sh main / e96 over the presets with mixed plans, then e96 / main (the card's
#     drift shows between the passes);
#  3. the rest of gpu-check (grids, memcheck, racecheck, synccheck) while time is left.
# Everything lands in $OUT as it comes; a call cut short returns what it measured. CALL_S (seconds,
# default 570), UNIT_FILTER (a gtest filter) and PRESETS shorten it where device time is short.
set -u
start=$SECONDS
budget=${CALL_S:-570}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x57b && rm -rf $x && mkdir -p $x/e96/tools $x/e96/tests
gunzip -c .device/s57b/chunktree.gz > $x/e96/tools/chunktree || exit 1
gunzip -c .device/s57b/chunktree_gpu_tests.gz > $x/e96/tests/chunktree_gpu_tests || exit 1
gunzip -c .device/s57b/chunktree_handoff_probe.gz > $x/e96/tests/chunktree_handoff_probe || exit 1
gunzip -c .device/s54c/chunktree.gz > $x/main || exit 1
chmod +x $x/main $x/e96/tools/chunktree $x/e96/tests/*
$x/e96/tools/chunktree info | head -3
left() { echo $((budget - (SECONDS - start))); }
timeout 150 $x/e96/tests/chunktree_gpu_tests --gtest_filter="${UNIT_FILTER:-*}" > $OUT/unit.txt 2>&1
rc=$?; echo "== unit tests rc $rc ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $OUT/unit.txt | tail -8
[ $rc -eq 0 ] || exit $rc
read -ra presets <<< "${PRESETS:-spec-decode hydragen-micro gqa-llama3 chunkattn-t3}"
t=$(left); [ $t -gt 60 ] && timeout $t bench/compare.sh $OUT/ab1 main=$x/main e96=$x/e96/tools/chunktree -- "${presets[@]}" > /dev/null 2>&1
cat $OUT/ab1/compare.md 2>/dev/null; echo "== A/B pass 1 ($((SECONDS - start)) s)"
t=$(left); [ $t -gt 150 ] && timeout $((t - 30)) bench/compare.sh $OUT/ab2 e96=$x/e96/tools/chunktree main=$x/main -- "${presets[@]}" > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 ($((SECONDS - start)) s)"
t=$(left); [ $t -gt 100 ] && timeout $t scripts/gpu-check --no-build --build-dir $x/e96 --work /tmp/gc57 --skip-full-grid \
  --only quick-grid,seq-first-quick-grid,random-trees,memcheck,racecheck,racecheck-probe,synccheck > $OUT/gpu_check.txt 2>&1
echo "== gpu-check rc $? ($((SECONDS - start)) s)"; tail -9 $OUT/gpu_check.txt 2>/dev/null; date -u
