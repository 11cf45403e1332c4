#!/usr/bin/env bash
# Session 39 call 5: experiment 73 (branch exp73, 7104bbb: the split search also cuts the longest span
# in even parts of whole wgmma stages) against main (a0506a1) on one machine: e73's --strict quick grid
# and random trees, the decode loop's chunktree-graph rows of both wheels in turn (two passes), the
# loop profile of both, the CLI's b64_p4k layer shape (main plans 512, e73 768) and bench/compare.sh
# main / e73 / main over gqa-llama3 (b64_p8k and b64_p32k re-plan). Prediction: KERNEL_NOTES
# session 39, 73. Carry [".device/s39r", ".device/s39x"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
X=.device/s39x/chunktree
$X gentests --quick /tmp/q > /dev/null && $X gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
for g in q t; do timeout 60 $X check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/e73_check_$g.txt 2>&1; echo "e73 check $g rc $? passed $(grep -c ^PASSED $OUT/e73_check_$g.txt) of $(ls /tmp/$g/*.txt | wc -l)"; done
for b in s39r s39x; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/$b/site .device/$b/wheel/*.whl || exit 1
done
for pass in 1 2; do for b in s39r s39x; do
  PYTHONPATH=/tmp/$b/site timeout 120 python3 bench/decode_loop.py $OUT/loop_${b}_$pass.csv --impls chunktree-graph --steps 24 --warmup 4 \
    > $OUT/loop_${b}_$pass.txt 2>&1; echo "loop $b pass $pass rc $? at $((SECONDS - start)) s"
done; done
for b in s39r s39x; do
  PYTHONPATH=/tmp/$b/site timeout 60 python3 docs/perf/2026-12-05-session38/loop_profile.py > $OUT/loop_profile_$b.txt 2>&1
  echo "profile $b rc $? at $((SECONDS - start)) s"
done
for pass in 1 2; do for b in s39r s39x; do
  .device/$b/chunktree bench --batch 64 --prefix 4096 --heads 32 --kv-heads 8 --dim 128 --suffix 20 --chunk 64 --csv $OUT/layer_${b}_$pass.csv > /dev/null 2>&1
  echo "layer b64_p4k $b pass $pass: $(grep ',chunktree,' $OUT/layer_${b}_$pass.csv | cut -d, -f11,16,17,24-)"
done; done
timeout 150 bench/compare.sh $OUT/ab main=.device/s39r/chunktree e73=.device/s39x/chunktree mainB=.device/s39r/chunktree -- gqa-llama3 > $OUT/compare.log 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat $OUT/ab/compare.md
for b in s39r s39x; do for pass in 1 2; do echo "$b $pass: $(grep chunktree-graph $OUT/loop_${b}_$pass.txt | sed 's/  */ /g' | cut -c1-100)"; done; done
grep -h 'replay span' $OUT/loop_profile_*.txt
cd $OUT && tar -czf /tmp/ab.tgz . && rm -rf ./* && mv /tmp/ab.tgz $OUT/ab.tgz; date -u
