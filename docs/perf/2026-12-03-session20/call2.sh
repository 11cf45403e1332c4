#!/usr/bin/env bash
# Session 20, call 2: experiment 47 after call 1 — the packing rule refined (one-stage items, or
# beside wgmma tiles while the packed tiles still queue: no preset split changes against main) and
# three kernels for it, against main's CLI: v1 (one path for packed and unpacked tiles, as call 1),
# v2 (producer and consumer paths templated on packing; producer 56 / consumers 200 registers),
# v2b (v2 with 88 / 168). Built here, stripped, in .device/s20b. GPU unit tests and --strict checks
# of v2; bench/compare.sh of all four.
set -u
x=.device/s20b; main=.device/s19m/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 150 $x/gpu_tests_v2 > $OUT/r/unit_v2.txt 2>&1; echo "unit v2 rc $?"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $OUT/r/unit_v2.txt | head -20
$main gentests --quick /tmp/q > /dev/null; $main gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 60 $x/chunktree_v2 check --strict --backend cuda --jobs 16 /tmp/q/*.txt /tmp/t/*.txt > $OUT/r/check_v2.txt 2>&1; echo "v2 strict rc $? $(grep -c ^PASSED $OUT/r/check_v2.txt)/132"
date -u
timeout 400 bench/compare.sh $OUT/r/ab main=$main v1=$x/chunktree_v1 v2=$x/chunktree_v2 v2b=$x/chunktree_v2b -- small no-share spec-decode flashinfer-cascade gqa-llama3 chunkattn-t3 > $OUT/r/compare.log 2>&1; echo "compare rc $?"
cat $OUT/r/ab/compare.md
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r; date -u
