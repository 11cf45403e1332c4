#!/usr/bin/env bash
# Session 43, call 2: experiment 79c alone (branch exp79c: 79's lane-held runs with each run's box
# starts found once when the window takes it, and the review's fix; no 79d) in .device/s43c beside
# main (.device/s41c): bench/ab_decode_step.sh; then, if no compare.sh row of 79c is more than 2 %
# slower than main's, the whole scripts/gpu-check of 79c; then, if time is left, ncu's source view of
# 79d's engine-path wgmma launch (.device/s43d/wheel), to see where 79d's +24 % (call 1) sits.
# Carry [".device/s43c", ".device/s41c", ".device/s43d/wheel"]. Prediction: KERNEL_NOTES session 43.
set -u
start=$SECONDS
limit=${1:-600}  # the call's limit in seconds (the session's device time ran low: 300)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench/ab_decode_step.sh $OUT main=.device/s41c e79c=.device/s43c
worst=$(awk -F'|' 'NR > 2 && $7 ~ /[0-9]/ {print $7}' $OUT/ab/compare.md | sort -n | head -1)
echo "worst main/e79c ratio: $worst"
(cd $OUT && tar -czf /tmp/ab_part.tgz . && rm -rf ./* && mv /tmp/ab_part.tgz $OUT/)  # back even if the call is cut short
if awk -v w="$worst" 'BEGIN {exit !(w >= 0.98)}'; then
  left=$((limit - 20 - (SECONDS - start)))
  timeout $left scripts/gpu-check --no-build --build-dir .device/s43c --work /tmp/gc > $OUT/gpu_check.txt 2>&1
  echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -13 $OUT/gpu_check.txt
  mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
fi
if [ $((SECONDS - start)) -lt $((limit - 100)) ]; then
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/e79d/site .device/s43d/wheel/*.whl
PYTHONPATH=/tmp/e79d/site timeout $((limit - 15 - (SECONDS - start))) ncu --clock-control none --graph-profiling node --section SourceCounters --section WarpStateStats \
  --import-source yes -k regex:wgmma_states --launch-skip 8 --launch-count 1 -o /tmp/src_e79d python3 bench/decode_loop.py \
  /tmp/ncu_e79d.csv --cases b64_p4k --impls chunktree-paged-graph --layers 4 --steps 2 --warmup 2 > $OUT/ncu_source_run_e79d.txt 2>&1
echo "source view rc $? at $((SECONDS - start)) s"
ncu --import /tmp/src_e79d.ncu-rep --page source --csv --print-source sass 2>&1 | gzip > $OUT/sass_e79d_paged.csv.gz
ncu --import /tmp/src_e79d.ncu-rep --page details > $OUT/details_e79d_paged.txt 2>&1
fi
cd $OUT && tar -czf /tmp/call2.tgz . && rm -rf ./* && mv /tmp/call2.tgz $OUT/call2.tgz; date -u
