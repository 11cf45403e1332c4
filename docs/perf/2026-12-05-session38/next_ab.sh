#!/usr/bin/env bash
# For the next session (any Hopper machine; before the committed run): experiment 71b (branch exp71b,
# patch exp71b-merge-width-by-plan-on-d0cfec6.patch; CLI, GPU tests and wheel in .device/s38x) against
# main (.device/s38r) on one machine: 71b's GPU unit tests (its new RowsMergingUpToFortyStates among
# them), the decode loop's chunktree-graph rows of both wheels in turn (two passes), and
# bench/compare.sh main / e71b / main over the presets whose rows merge many or few states.
# Prediction (KERNEL_NOTES session 38, 71b): decode-loop GPU part b64_p4k -1.2 us a layer and b8_p1k
# -0.8 (as 71), b256_p2k and b8_p1k_distinct unchanged (their rows merge 2-3 states: the narrow
# kernel, byte for byte main's); fully shared one-shot rows cut in 8+ parts -0.3 to -1 us; rows whose
# rows merge at most 4 states unchanged. Carry [".device/s38r", ".device/s38x"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 280 stdbuf -oL .device/s38x/chunktree_gpu_tests > $OUT/e71b_tests.txt 2>&1
echo "e71b GPU unit tests rc $? at $((SECONDS - start)) s"; grep -E '^\[ +(FAILED|PASSED|SKIPPED) ' $OUT/e71b_tests.txt | tail -4
for b in s38r s38x; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for pass in 1 2; do for b in s38r s38x; do
  PYTHONPATH=/tmp/$b/site timeout 120 python3 bench/decode_loop.py $OUT/loop_${b}_$pass.csv --impls chunktree-graph --steps 24 --warmup 4 \
    > $OUT/loop_${b}_$pass.txt 2>&1; echo "loop $b pass $pass rc $? at $((SECONDS - start)) s"
done; done
timeout 200 bench/compare.sh $OUT/ab main=.device/s38r/chunktree e71b=.device/s38x/chunktree mainB=.device/s38r/chunktree -- chunkattn-t3 spec-decode small > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
for b in s38r s38x; do for pass in 1 2; do echo "$b $pass: $(grep chunktree-graph $OUT/loop_${b}_$pass.txt | sed 's/  */ /g' | cut -c1-120)"; done; done
cd $OUT && tar -czf /tmp/ab.tgz . && rm -rf ./* && mv /tmp/ab.tgz $OUT/ab.tgz; date -u
