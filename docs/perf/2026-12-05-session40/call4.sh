#!/usr/bin/env bash
# Session 40, call 4: experiment 74 (branch exp74, 9d87abc: the wgmma kernel first on the caller's
# stream, the mma.sync kernel on the forked stream) in .device/s40x (tools/, tests/, wheel/), main
# (1643e1c) in .device/s40r. First the whole scripts/gpu-check of e74 (its new test
# TheMergeWaitsForLongMmaSyncTilesBesideShortWgmmaOnes among the GPU unit tests), then
# bench/compare.sh main / e74 / main over the presets whose rows have both tile kinds and the decode loop's
# shapes. Prediction: KERNEL_NOTES session 40, 74. Carry [".device/s40x", ".device/s40r"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 380 scripts/gpu-check --no-build --build-dir .device/s40x --work /tmp/gc > $OUT/gpu_check_e74.txt 2>&1
echo "gpu-check e74 rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check_e74.txt
grep -h "MergeWaits" /tmp/gc/gpu-unit-tests.log
printf 'b64_p4k --batch 64 --prefix 4096 --suffix 20 --heads 32 --kv-heads 8 --dim 128 --chunk 64\nb256_p2k --batch 256 --prefix 2048 --suffix 20 --heads 32 --kv-heads 8 --dim 128 --chunk 64\n' >> bench/shapes.txt
timeout 180 bench/compare.sh $OUT/ab main=.device/s40r/chunktree e74=.device/s40x/tools/chunktree mainB=.device/s40r/chunktree -- gqa-llama3 spec-decode chunkattn-t3 tree small > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
cd $OUT && tar -czf /tmp/ab.tgz . && rm -rf ./* && mv /tmp/ab.tgz $OUT/ab.tgz; date -u
