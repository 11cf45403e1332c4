#!/usr/bin/env bash
# Session 44, call 2: call 1's worst rows again (chunkattn-t3's fully shared np2048_ns2048 at 0.977,
# gqa-llama3's b64_p2k at 0.986) as main, e79f, main again in one compare.sh, so that the card's
# drift between builds shows as main against main; then the whole scripts/gpu-check of e79f.
# Carry [".device/s44f", ".device/s41c"].
set -u
start=$SECONDS
limit=${1:-600}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 120 bench/compare.sh $OUT/aba main=.device/s41c/chunktree e79f=.device/s44f/tools/chunktree main2=.device/s41c/chunktree -- chunkattn-t3 gqa-llama3 > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/aba/compare.md
(cd $OUT && tar -czf /tmp/aba.tgz . && rm -rf ./* && mv /tmp/aba.tgz $OUT/)  # back even if the call is cut short
left=$((limit - 20 - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir .device/s44f --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
(cd $OUT && tar -czf /tmp/gc.tgz gpu_check.txt verbose && rm -rf gpu_check.txt verbose && mv /tmp/gc.tgz $OUT/)
date -u
