#!/usr/bin/env bash
# Session 62's committed run of main 6633662 (experiment 106 merged; `.device/s62f`: its CLI, GPU
# tests and wheel), on whatever card comes, then its GPU unit tests in the time left (106 is host
# code; exp107's build, which held it, passed them in this session's first call).
# Carry [".device/s62f", ".carry"].
start=$SECONDS
call_s=${CALL_S:-590}
bash bench/committed_run.sh .device/s62f "$OUT/run" 400 --full-grids
echo "== committed run done ($((SECONDS - start)) s)"
left=$((call_s - (SECONDS - start)))
[ $left -gt 60 ] || { echo "no time left for the unit tests ($left s)"; exit 0; }
x=/tmp/x62f && rm -rf $x && mkdir -p $x && xz -dc .device/s62f/chunktree_gpu_tests.xz > $x/chunktree_gpu_tests && chmod +x $x/chunktree_gpu_tests
timeout $((left - 10)) $x/chunktree_gpu_tests > $OUT/unit_6633662.txt 2>&1
echo "== unit tests rc $? ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $OUT/unit_6633662.txt | tail -8
