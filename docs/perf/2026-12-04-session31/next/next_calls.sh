#!/usr/bin/env bash
# Prepared in session 31 for the next session: experiment 68 (exp68-on-main.patch: the paged path
# prices a lone mma.sync tile at a slot's rate on pages that interleave kv heads) against main, and
# the diagnostic that decides it: the same rows on NHD and on HND pages (a kv head's rows contiguous).
# Session 31's ncu (call5/) put the engine path's b64_g16_8k kernel at 172 µs on NHD pages against
# 133 µs for the cache path's same 128 whole tiles; b64_g32_16k (one kv head: NHD rows contiguous)
# 193 against 190. KERNEL_NOTES, session 31, holds the prediction.
# On the development machine first (fresh checkout):
#   scripts/fetch-cutlass && cmake --preset default && ninja -C build/default
#   PY=/root/.pyenv/versions/3.12.1/bin/python3
#   $PY -m pip wheel . --no-deps -w .device/next/main/wheel
#   git apply docs/perf/2026-12-04-session31/next/exp68-on-main.patch   (or git am; revert after)
#   $PY -m pip wheel . --no-deps -w .device/next/e68/wheel && git checkout -- src tests
# Commit this session's call script first. Carry [".device/next"] (no FlashInfer bundle needed).
#
#   call (~400 s): bash docs/perf/2026-12-04-session31/next/next_calls.sh ab
# Rows: private (7), small (4), chunkattn-t3 np1024_ns0 (a control: mma.sync tiles of one row) and
# the three fully shared rows, flashinfer-cascade p1k/p8k/p32k_b32_s0 and p8k_b128_s256 (a control).
set -u
[ "${1:-}" = ab ] || { echo "usage: next_calls.sh ab"; exit 2; }
N=docs/perf/2026-12-04-session31/next; w=/tmp/e68; rm -rf $w; mkdir -p $w
for b in main e68; do
  python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site_$b .device/next/$b/wheel/*.whl || exit 1
done
cases="--cases $N/cases_private.json --cases $N/cases_small.json --cases $N/cases_chunkattn-t3.json --cases $N/cases_flashinfer-cascade.json"
pass=0
for step in main:chunktree-paged e68:chunktree-paged main:chunktree-paged-hnd e68:chunktree-paged-hnd main:chunktree-paged e68:chunktree-paged; do
  b=${step%%:*}; impl=${step#*:}; pass=$((pass + 1)); date -u +%T
  PYTHONPATH=$w/site_$b timeout 100 python3 bench/baselines.py $cases --ceilings docs/perf/2026-12-04-session31-run2/ceilings.json \
    --out $OUT/pass${pass}_${b}_${impl}.csv --impl $impl > $OUT/pass${pass}_${b}_${impl}.txt 2>&1
  echo "pass $pass $b $impl rc $?"
done
