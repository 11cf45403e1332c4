#!/usr/bin/env bash
# Session 39 call 6: experiment 73 gated (branch exp73, 9a1400e: the even cuts only beside private
# spans of at most one mma.sync stage) against main (a0506a1) on one machine: its --strict quick grid
# and random trees, the decode loop's chunktree-graph rows of both wheels in turn (two passes), the
# loop profile of both and the CLI's b64_p4k layer shape (main plans 512, 73 768). No preset row
# re-plans (`chunktree bench --preset all --plan-splits 132` as main), so no compare.
# Carry [".device/s39r", ".device/s39y"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
X=.device/s39y/chunktree
$X gentests --quick /tmp/q > /dev/null && $X gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
for g in q t; do timeout 60 $X check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/e73g_check_$g.txt 2>&1; echo "e73g check $g rc $? passed $(grep -c ^PASSED $OUT/e73_check_$g.txt) of $(ls /tmp/$g/*.txt | wc -l)"; done
for b in s39r s39y; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for pass in 1 2; do for b in s39r s39y; do
  PYTHONPATH=/tmp/$b/site timeout 120 python3 bench/decode_loop.py $OUT/loop_${b}_$pass.csv --impls chunktree-graph --steps 24 --warmup 4 \
    > $OUT/loop_${b}_$pass.txt 2>&1; echo "loop $b pass $pass rc $? at $((SECONDS - start)) s"
done; done
for b in s39r s39y; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session38/loop_profile.py > $OUT/loop_profile_$b.txt 2>&1
  echo "profile $b rc $? at $((SECONDS - start)) s"
done
for pass in 1 2; do for b in s39r s39y; do
  .device/$b/chunktree bench --batch 64 --prefix 4096 --heads 32 --kv-heads 8 --dim 128 --suffix 20 --chunk 64 --csv $OUT/layer_${b}_$pass.csv > /dev/null 2>&1
  echo "layer b64_p4k $b pass $pass: $(grep ',chunktree,' $OUT/layer_${b}_$pass.csv | cut -d, -f11,16,17,24-)"
done; done
for b in s39r s39y; do for pass in 1 2; do echo "$b $pass: $(grep chunktree-graph $OUT/loop_${b}_$pass.txt | sed 's/  */ /g' | cut -c1-100)"; done; done
grep -h 'replay span' $OUT/loop_profile_*.txt
cd $OUT && tar -czf /tmp/ab.tgz . && rm -rf ./* && mv /tmp/ab.tgz $OUT/ab.tgz; date -u
