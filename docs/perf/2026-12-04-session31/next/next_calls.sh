#!/usr/bin/env bash
# Prepared in session 31 for the next session: two experiments on the engine path (KERNEL_NOTES,
# session 31, holds both predictions), each one call, then a committed run of whatever is kept.
#  - ab68: experiment 68 (exp68-on-main.patch: the paged path prices a lone mma.sync tile at a
#    slot's rate on pages that interleave kv heads) against main, and the diagnostic that decides
#    it: the same rows on NHD and on HND pages (a kv head's rows contiguous). Session 31's ncu
#    (call5/) put the engine path's b64_g16_8k kernel at 172 µs on NHD pages against 133 µs for the
#    cache path's same 128 whole tiles; b64_g32_16k (one kv head: NHD rows contiguous) 193 against 190.
#  - ab69: experiment 69 (exp69-on-main.patch: a replayed call whose live plan has one state per row
#    writes the output from the states kernels and merges no row): its GPU unit tests and memcheck
#    on the replay tests first, then main / e69 / main / e69 on the rows whose plans have one state
#    per row (no-share, private b128_g4_2k, b64_g8_4k, b64_g16_8k, chunkattn np*_ns0) and others.
# On the development machine first (fresh checkout; session 31 left these in .device/next):
#   scripts/fetch-cutlass && cmake --preset default && ninja -C build/default
#   PY=/root/.pyenv/versions/3.12.1/bin/python3
#   $PY -m pip wheel . --no-deps -w .device/next/main/wheel
#   for e in 68 69: git apply docs/perf/2026-12-04-session31/next/exp$e-on-main.patch,
#     $PY -m pip wheel . --no-deps -w .device/next/e$e/wheel, and for 69 also ninja -C build/default and
#     strip -o .device/next/e69/tests/chunktree_gpu_tests build/default/tests/chunktree_gpu_tests;
#     then git checkout -- src tests
# Session 32 (no device lent) moved main (host code only: argument checks, one place for a call's
# q heads and scale, fp64 sums in the CPU backend; no kernel changed) and rebased the branches exp68
# and exp69 on it; it rebuilt .device/next/{main,e68,e69} (and .device/final for main's committed
# run) from main b728539 and those branches, so the steps above are done where .device/ survived:
# check `git log -1 --format=%h exp68 exp69 main` against .device/next/BUILT.
# Session 33 (no device lent again) moved main once more (host code: the Python package and the
# prefix cache split into files, bench/baselines.py into cases.py and peers.py, the long-span test
# on both backends; no kernel changed), rebased exp68 and exp69 on it and rebuilt the same folders.
# Both calls ran in session 33 (docs/perf/2026-12-05-session33/call1.sh, call4.sh): 69 and 68 kept.
# Commit the session's call scripts first. Carry [".device/next"] (no FlashInfer bundle needed).
#
#   call (~400 s): bash docs/perf/2026-12-04-session31/next/next_calls.sh ab68
#   call (~330 s): bash docs/perf/2026-12-04-session31/next/next_calls.sh ab69
set -u
N=docs/perf/2026-12-04-session31/next; w=/tmp/next; mkdir -p $w
CEIL=docs/perf/2026-12-04-session31-run2/ceilings.json
install() { [ -d $w/site_$1 ] || python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site_$1 .device/next/$1/wheel/*.whl; }
passes() {  # passes "CASES" build:impl ...
  local cases=$1; shift; local pass=0
  for step in "$@"; do
    local b=${step%%:*} impl=${step#*:}; pass=$((pass + 1)); install $b || exit 1; date -u +%T
    PYTHONPATH=$w/site_$b timeout 100 python3 bench/baselines.py $cases --ceilings $CEIL \
      --out $OUT/pass${pass}_${b}_${impl}.csv --impl $impl > $OUT/pass${pass}_${b}_${impl}.txt 2>&1
    echo "pass $pass $b $impl rc $?"
  done
}
case "${1:-}" in
  ab68)
    # Rows: private (7), small (4), chunkattn-t3 np1024_ns0 (a control) and the three fully shared
    # rows, flashinfer-cascade p1k/p8k/p32k_b32_s0 and p8k_b128_s256 (a control).
    passes "--cases $N/cases_private.json --cases $N/cases_small.json --cases $N/cases_chunkattn-t3.json --cases $N/cases_flashinfer-cascade.json" \
      main:chunktree-paged e68:chunktree-paged main:chunktree-paged-hnd e68:chunktree-paged-hnd main:chunktree-paged e68:chunktree-paged ;;
  ab69)
    date -u; timeout 200 .device/next/e69/tests/chunktree_gpu_tests > $OUT/e69_gpu_tests.txt 2>&1; echo "e69 GPU unit tests rc $?"; tail -3 $OUT/e69_gpu_tests.txt
    timeout 150 compute-sanitizer --tool memcheck .device/next/e69/tests/chunktree_gpu_tests \
      --gtest_filter='CudaPaged.Captured*:CudaPaged.Replayed*' > $OUT/e69_memcheck.txt 2>&1; echo "memcheck rc $?"; tail -2 $OUT/e69_memcheck.txt
    passes "--cases $N/cases_no-share.json --cases $N/cases_private.json --cases $N/cases_chunkattn-t3.json" \
      main:chunktree-paged e69:chunktree-paged main:chunktree-paged e69:chunktree-paged ;;
  *) echo "usage: next_calls.sh ab68|ab69"; exit 2 ;;
esac
