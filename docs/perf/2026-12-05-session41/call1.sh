#!/usr/bin/env bash
# Session 41, call 1: experiment 77 (branch exp77: the producers' run records one per lane of a
# warp) in .device/s41x (tools/, tests/, wheel/) beside main (76d8db4) in .device/s41r. First the
# engine path's decode step under the profiler (session 40's paged_profile.py) and the cache path's
# (session 38's loop_profile.py) through main's wheel, e77's, and main's again; then bench/compare.sh
# main / e77 over the presets with the most run changes; then Nsight Compute of the engine path's
# wgmma kernel through each wheel (session 40's next_ncu.sh metrics); last the GPU unit tests of
# e77 that walk pages, trees and wide tiles. Prediction: KERNEL_NOTES session 41, 77.
# Carry [".device/s41x", ".device/s41r"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
for b in s41r s41x; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for b in s41r s41x s41r; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py b64_p4k b256_p2k >> $OUT/paged_profile_$b.txt 2>&1
  PYTHONPATH=/tmp/$b/site timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k >> $OUT/loop_profile_$b.txt 2>&1
  echo "== $b profiles at $((SECONDS - start)) s"; grep -v Warn $OUT/paged_profile_$b.txt | grep -v _warn_once | tail -14; grep -A8 "replay span" $OUT/loop_profile_$b.txt | tail -9
done
timeout 200 bench/compare.sh $OUT/ab main=.device/s41r/chunktree e77=.device/s41x/tools/chunktree -- chunkattn-t3 tree small gqa-llama3 spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct
metrics+=,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_requests_srcunit_tex_op_read.sum
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
for b in s41r s41x; do
  PYTHONPATH=/tmp/$b/site timeout 90 ncu --clock-control none --graph-profiling node --metrics "$metrics" \
    -k regex:wgmma_states --launch-skip 8 --launch-count 2 python3 bench/decode_loop.py /tmp/ncu_$b.csv --cases b64_p4k \
    --impls chunktree-paged-graph --layers 4 --steps 2 --warmup 2 > $OUT/ncu_paged_$b.txt 2>&1
  echo "ncu $b rc $? at $((SECONDS - start)) s"; grep -E "gpu__time_duration|dram__bytes_read.sum |dram__throughput|hit_rate|long_scoreboard|barrier|stalled_wait" $OUT/ncu_paged_$b.txt | head -16
done
left=$((560 - (SECONDS - start)))
timeout $left stdbuf -oL .device/s41x/tests/chunktree_gpu_tests --gtest_filter='*Paged*:*Wide*:*Replay*:*Tree*:*MergeWaits*:*Chunk*' > $OUT/tests_e77.txt 2>&1
echo "tests rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(FAILED|PASSED|SKIPPED) ' $OUT/tests_e77.txt | tail -8
cd $OUT && tar -czf /tmp/c1.tgz . && rm -rf ./* && mv /tmp/c1.tgz $OUT/call1.tgz; date -u
