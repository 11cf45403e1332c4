#!/usr/bin/env bash
# Session 42, call 2: experiment 78 (branch exp78 at c7de8a4: the wgmma producer loads the next window
# of 32 run records as the current one starts) in .device/s42y beside main (2125387 code) in .device/s41c.
# The pattern of session 41 call1.sh: loop profiles of the engine path (b64_p4k, b256_p2k) and the cache path
# (b64_p4k) through main, e78, main; bench/compare.sh main / e78; ncu of the engine path wgmma kernel.
# Carry [".device/s42y", ".device/s41c"]. Prediction (KERNEL_NOTES session 41, 78): engine wgmma b64_p4k
# 28.5 -> 26-27.5 us, b256_p2k 36.2 -> 33.5-35; the cache path and compare rows unchanged within spread.
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in s41c s42y; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for b in s41c s42y s41c; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py b64_p4k b256_p2k >> $OUT/paged_profile_$b.txt 2>&1
  PYTHONPATH=/tmp/$b/site timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k >> $OUT/loop_profile_$b.txt 2>&1
  echo "== $b profiles at $((SECONDS - start)) s"; grep -v Warn $OUT/paged_profile_$b.txt | grep -v _warn_once | tail -14; grep -A8 "replay span" $OUT/loop_profile_$b.txt | tail -9
done
timeout 200 bench/compare.sh $OUT/ab main=.device/s41c/chunktree e78=.device/s42y/tools/chunktree -- chunkattn-t3 tree gqa-llama3 spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct
metrics+=,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_requests_srcunit_tex_op_read.sum
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
for b in s41c s42y; do
  PYTHONPATH=/tmp/$b/site timeout 90 ncu --clock-control none --graph-profiling node --metrics "$metrics" \
    -k regex:wgmma_states --launch-skip 8 --launch-count 2 python3 bench/decode_loop.py /tmp/ncu_$b.csv --cases b64_p4k \
    --impls chunktree-paged-graph --layers 4 --steps 2 --warmup 2 > $OUT/ncu_paged_$b.txt 2>&1
  echo "ncu $b rc $? at $((SECONDS - start)) s"; grep -E "gpu__time_duration|dram__bytes_read.sum |dram__throughput|hit_rate|long_scoreboard|barrier|stalled_wait" $OUT/ncu_paged_$b.txt | head -16
done
cd $OUT && tar -czf /tmp/c2.tgz . && rm -rf ./* && mv /tmp/c2.tgz $OUT/call2.tgz; date -u
