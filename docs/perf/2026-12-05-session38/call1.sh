#!/usr/bin/env bash
# Session 38, call 1: where the decode loop's GPU time goes (loop_profile.py: kernel records of the
# chunktree-graph replay, 7b01e68's wheel), and the CLI's one-call time of each case's attention
# shape (20 generated tokens a sequence, cold L2 and warm), for the per-layer comparison.
# Carry [".device/s37r"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s38/site .device/s37r/wheel/*.whl || exit 1
export PYTHONPATH=/tmp/s38/site
timeout 240 python3 docs/perf/2026-12-05-session38/loop_profile.py > $OUT/loop_profile.txt 2>&1; echo "loop_profile rc $? at $((SECONDS - start)) s"
cli=.device/s37r/chunktree
for shape in "64 4096" "256 2048" "8 1024"; do
  set -- $shape
  for warm in "" "--warm"; do
    timeout 60 $cli bench --batch $1 --heads 32 --kv-heads 8 --dim 128 --prefix $2 --suffix 20 $warm --csv $OUT/cli_b$1$warm.csv > /dev/null 2>&1
    echo "b$1 p$2 s20 $warm: rc $?"
  done
done
cat $OUT/loop_profile.txt
for f in $OUT/cli_*.csv; do echo "$f"; cut -d, -f3,11,16,17,25 "$f" | tail -n +2; done
echo "done at $((SECONDS - start)) s"; date -u
