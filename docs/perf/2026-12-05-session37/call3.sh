#!/usr/bin/env bash
# Session 37, call 3: is the decode loop's host work in this session's committed run (b64_p4k 167.0 µs
# a step, 13.7 % of it; session 34's run 56.8, 5.2 %) the code's (sessions 35-36: the strong guarantee
# of append_batch, the item cap, the padding rows) or the machine's (the peers' host work and the
# graph replay, which run none of our code, took 2-3x as long too)? One machine, both builds in turn,
# twice (a b a b): host-bench (the CLI, 100 repeats) and the decode loop's b64_p4k chunktree-graph row (the
# wheel); cut to fit the session's device time left.
# eed852e (session 34's run) in .device/s34, dcd0198 (session 37's run) in .device/s36r.
# Carry [".device/s34", ".device/s36r"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench/host_machine.sh | tee $OUT/host_machine.txt
declare -A cli=([eed852e]=.device/s34/tools/chunktree [dcd0198]=.device/s36r/chunktree)
declare -A whl=([eed852e]=.device/s34/wheel [dcd0198]=.device/s36r/wheel)
for b in eed852e dcd0198; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ab/$b ${whl[$b]}/*.whl || exit 1
done
for pass in 1 2; do
  for b in eed852e dcd0198; do
    timeout 60 ${cli[$b]} host-bench --repeats 100 --csv $OUT/host_${b}_$pass.csv > $OUT/host_${b}_$pass.txt 2>&1 || echo "host-bench $b rc $?"
    PYTHONPATH=/tmp/ab/$b timeout 150 python3 bench/decode_loop.py $OUT/loop_${b}_$pass.csv --cases b64_p4k \
      --impls chunktree-graph --commit $b > $OUT/loop_${b}_$pass.txt 2>&1 || echo "decode_loop $b rc $?"
    grep -E "graph " $OUT/loop_${b}_$pass.txt | sed "s/^/$b pass $pass: /"
    echo "at $((SECONDS - start)) s"
  done
done
bench/host_machine.sh | tail -2 | tee -a $OUT/host_machine.txt
date -u
