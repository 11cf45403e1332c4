#!/usr/bin/env bash
# Session 42, call 4: experiment 79 (branch exp79: each producer lane holds a run and copies its part
# of a stage as TMA boxes, NHD pages included) in .device/s42z beside main (2125387's kernels) in
# .device/s41c. First the engine path's and the cache path's loop profiles through main, e79, main;
# then bench/compare.sh main / e79 over the presets whose wide items cross runs; ncu of the engine
# path's wgmma launch (session 41's metrics) through both wheels; then the whole scripts/gpu-check of
# e79. Prediction: KERNEL_NOTES session 42, 79. Carry [".device/s42z", ".device/s41c"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/main/site .device/s41c/wheel/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/e79/site .device/s42z/wheel/*.whl || exit 1
for b in main e79 main; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py b64_p4k b256_p2k >> $OUT/paged_profile_$b.txt 2>&1
  PYTHONPATH=/tmp/$b/site timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k >> $OUT/loop_profile_$b.txt 2>&1
  echo "== $b profiles at $((SECONDS - start)) s"; grep "replay span" $OUT/paged_profile_$b.txt | tail -2; grep "replay span" $OUT/loop_profile_$b.txt | tail -1
done
timeout 150 bench/compare.sh $OUT/ab main=.device/s41c/chunktree e79=.device/s42z/tools/chunktree -- chunkattn-t3 tree gqa-llama3 spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum
for b in main e79; do
  PYTHONPATH=/tmp/$b/site timeout 60 ncu --clock-control none --graph-profiling node --metrics "$metrics" \
    -k regex:wgmma_states --launch-skip 8 --launch-count 2 python3 bench/decode_loop.py /tmp/ncu_$b.csv --cases b64_p4k \
    --impls chunktree-paged-graph --layers 4 --steps 2 --warmup 2 > $OUT/ncu_paged_$b.txt 2>&1
  echo "ncu $b rc $? at $((SECONDS - start)) s"; grep -E "gpu__time_duration|dram__bytes_read.sum |hit_rate|long_scoreboard|stalled_wait|inst_executed.sum" $OUT/ncu_paged_$b.txt | head -12
done
left=$((560 - (SECONDS - start)))
timeout $left scripts/gpu-check --no-build --build-dir .device/s42z --work /tmp/gc > $OUT/gpu_check.txt 2>&1
echo "gpu-check rc $? at $((SECONDS - start)) s"; tail -14 $OUT/gpu_check.txt
mkdir -p $OUT/verbose; cp /tmp/gc/*.log $OUT/verbose/ 2>/dev/null
cd $OUT && tar -czf /tmp/c4.tgz . && rm -rf ./* && mv /tmp/c4.tgz $OUT/call4.tgz; date -u
