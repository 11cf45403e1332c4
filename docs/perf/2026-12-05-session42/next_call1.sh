#!/usr/bin/env bash
# Session 43, call 1: experiment 79d (branch exp79: the window's run parts one after another, their
# values shuffled to every thread, thread 0 issuing each part's boxes from uniform registers) in
# .device/s43d beside main (2125387's kernels) in .device/s41c: the loop profiles of the engine path
# (b64_p4k, b256_p2k) and the cache path (b64_p4k) through main, e79d, main; bench/compare.sh over the
# presets with many wide tiles; ncu of the engine path's wgmma launch; the whole scripts/gpu-check of
# e79d. Carry [".device/s43d", ".device/s41c"]. Prediction: KERNEL_NOTES session 42, 79d.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/main/site .device/s41c/wheel/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/e79d/site .device/s43d/wheel/*.whl || exit 1
for b in main e79d main; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py b64_p4k b256_p2k >> $OUT/paged_profile_$b.txt 2>&1
  PYTHONPATH=/tmp/$b/site timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k >> $OUT/loop_profile_$b.txt 2>&1
  echo "== $b profiles at $((SECONDS - start)) s"; grep "replay span" $OUT/paged_profile_$b.txt | tail -2; grep "replay span" $OUT/loop_profile_$b.txt | tail -1
done
timeout 150 bench/compare.sh $OUT/ab main=.device/s41c/chunktree e79d=.device/s43d/tools/chunktree -- chunkattn-t3 tree gqa-llama3 spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
metrics=gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,smsp__inst_executed.sum
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
for b in main e79d; do
  PYTHONPATH=/tmp/$b/site timeout 60 ncu --clock-control none --graph-profiling node --metrics "$metrics" \
    -k regex:wgmma_states --launch-skip 8 --launch-count 2 python3 bench/decode_loop.py /tmp/ncu_$b.csv --cases b64_p4k \
    --impls chunktree-paged-graph --layers 4 --steps 2 --warmup 2 > $OUT/ncu_paged_$b.txt 2>&1
  echo "ncu $b rc $? at $((SECONDS - start)) s"; grep -E "gpu__time_duration|hit_rate|long_scoreboard|inst_executed.sum" $OUT/ncu_paged_$b.txt | head -8
done
left=$((560 - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir .device/s43d --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -14 $OUT/gpu_check.txt
mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
cd $OUT && tar -czf /tmp/next1.tgz . && rm -rf ./* && mv /tmp/next1.tgz $OUT/next_call1.tgz; date -u
