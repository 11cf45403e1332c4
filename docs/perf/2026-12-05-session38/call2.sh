#!/usr/bin/env bash
# Session 38, call 2: experiments 70 (the merge chained after the second stream's join, 9e30c16,
# .device/s38) and 71 (70 + the merge's o reads 8 states at once at d 128, branch exp71,
# .device/s38b) checked and timed against 7b01e68 (.device/s37r) on one machine: 70's GPU unit tests, 70's and 71's --strict
# quick grid and random trees, the decode loop's chunktree-graph
# rows of the three wheels in turn (two passes), the loop profile of 70, and
# bench/compare.sh of the three CLIs over two presets with both tile kinds.
# Carry [".device/s37r", ".device/s38", ".device/s38b"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
timeout 180 .device/s38/chunktree_gpu_tests --gtest_brief=1 > $OUT/e70_tests.txt 2>&1
echo "e70 GPU unit tests rc $? at $((SECONDS - start)) s: $(grep -E '^\[ +(PASSED|FAILED|SKIPPED) +\]' $OUT/e70_tests.txt | tr '\n' ' ')"
.device/s38/chunktree gentests --quick /tmp/q > /dev/null && .device/s38/chunktree gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
for e in s38 s38b; do for g in q t; do
  timeout 60 .device/$e/chunktree check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/check_${e}_$g.txt 2>&1
  echo "$e check $g rc $? $(grep -c ^PASSED $OUT/check_${e}_$g.txt) passed"
done; done
for b in s37r s38 s38b; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for pass in 1 2; do
  for b in s37r s38 s38b; do
    PYTHONPATH=/tmp/$b/site timeout 120 python3 bench/decode_loop.py $OUT/loop_${b}_$pass.csv --impls chunktree-graph --steps 24 --warmup 4 \
      > $OUT/loop_${b}_$pass.txt 2>&1; echo "loop $b pass $pass rc $? at $((SECONDS - start)) s"
  done
done
for b in s38; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session38/loop_profile.py > $OUT/loop_profile_$b.txt 2>&1
  echo "profile $b rc $? at $((SECONDS - start)) s"
done
timeout 150 bench/compare.sh $OUT/ab main=.device/s37r/chunktree e70=.device/s38/chunktree e71=.device/s38b/chunktree -- gqa-llama3 spec-decode > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"
for b in s37r s38 s38b; do for pass in 1 2; do echo "$b $pass: $(grep chunktree-graph $OUT/loop_${b}_$pass.txt | sed 's/  */ /g' | cut -c1-200)"; done; done
grep -h 'replay span' $OUT/loop_profile_s38*.txt
cat $OUT/ab/compare.md 2>/dev/null | head -60
echo "done at $((SECONDS - start)) s"; date -u
cd $OUT && tar -czf /tmp/call2.tgz . && rm -rf ./* && mv /tmp/call2.tgz $OUT/call2.tgz
