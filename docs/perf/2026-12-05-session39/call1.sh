#!/usr/bin/env bash
# Session 39 call 1 (from session 38 next_ab.sh; only the merge, write_kv, wide-tile and replay unit tests here: the whole suite runs in gpu-check of what is kept)
# width by the plan's longest merge list) and 72 (write_kv 16 bytes a thread) together, branch
# exp71b72 (cd98019; patches exp71b-...-on-d0cfec6.patch and exp72-...-on-646cc81.patch), CLI, GPU
# tests and wheel in .device/s38x, against main (.device/s38r) on one machine: the combined build's
# GPU unit tests (RowsMergingUpToFortyStates and WriteKvFromAlignedAndMisalignedDeviceMemory among
# them), the decode loop's chunktree-graph rows of both wheels in turn (two passes), the loop profile
# of both (its per-kernel times separate the two experiments: merge for 71b, scatter_kv for 72), and
# bench/compare.sh main / e71b72 / main over presets whose rows merge many or few states (72 does not
# touch the CLI's timed calls). Predictions: KERNEL_NOTES session 38, 71b and 72.
# Carry [".device/s38r", ".device/s38x"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 120 stdbuf -oL .device/s38x/chunktree_gpu_tests --gtest_filter="*Merg*:*WriteKv*:*Wide*:*Replay*" > $OUT/e71b72_tests.txt 2>&1
echo "e71b72 GPU unit tests rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(FAILED|PASSED|SKIPPED) ' $OUT/e71b72_tests.txt | tail -4
for b in s38r s38x; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for pass in 1 2; do for b in s38r s38x; do
  PYTHONPATH=/tmp/$b/site timeout 120 python3 bench/decode_loop.py $OUT/loop_${b}_$pass.csv --impls chunktree-graph --steps 24 --warmup 4 \
    > $OUT/loop_${b}_$pass.txt 2>&1; echo "loop $b pass $pass rc $? at $((SECONDS - start)) s"
done; done
for b in s38r s38x; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session38/loop_profile.py > $OUT/loop_profile_$b.txt 2>&1
  echo "profile $b rc $? at $((SECONDS - start)) s"
done
timeout 150 bench/compare.sh $OUT/ab main=.device/s38r/chunktree e71b72=.device/s38x/chunktree mainB=.device/s38r/chunktree -- chunkattn-t3 spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
for b in s38r s38x; do for pass in 1 2; do echo "$b $pass: $(grep chunktree-graph $OUT/loop_${b}_$pass.txt | sed 's/  */ /g' | cut -c1-120)"; done; done
grep -h 'replay span' $OUT/loop_profile_*.txt
cd $OUT && tar -czf /tmp/ab.tgz . && rm -rf ./* && mv /tmp/ab.tgz $OUT/ab.tgz; date -u
