#!/usr/bin/env bash
# Prepared in session 30 for the next session's first two device calls: 67c (549213b and later: the
# claim decided per plan on the host) has passed the whole GPU unit suite (78/78, session 30 call 5)
# and a same-call A/B, but neither scripts/gpu-check nor a committed run.
# On the development machine first (fresh checkout):
#   scripts/fetch-cutlass && cmake --preset default && ninja -C build/default
#   mkdir -p .device/gc/tools .device/gc/tests .device/final/tests
#   strip -o .device/gc/tools/chunktree build/default/tools/chunktree
#   strip -o .device/gc/tests/chunktree_gpu_tests build/default/tests/chunktree_gpu_tests
#   strip -o .device/gc/tests/chunktree_handoff_probe build/default/tests/chunktree_handoff_probe
#   cp .device/gc/tools/chunktree .device/final/ && cp .device/gc/tests/chunktree_gpu_tests .device/final/tests/
#   python3 -m pip wheel . --no-deps -w .device/final/wheel        (the pyenv 3.12.1 python)
#   .carry/bundle.tgz rebuilt as bench/README.md says (about 21 minutes on the two loaded cores)
# Commit the call scripts first so that the CLI names HEAD. Carry [".device", ".carry"] (the tree,
# .device and .carry together must stay under 64 MiB: keep only these files in .device).
#
#   call A (~340 s): bash docs/perf/2026-12-04-session30/next/next_calls.sh gpu-check
#   call B (~360 s): bash docs/perf/2026-12-04-session30/next/next_calls.sh run
# Each call must stay under 600 s: session 30's call 2 put an A/B and the committed run in one call
# and lost the run.
set -u
case "${1:?gpu-check or run}" in
  gpu-check)
    date -u; timeout 500 scripts/gpu-check --no-build --build-dir .device/gc --work /tmp/gc > $OUT/gpu_check.txt 2>&1
    echo "gpu-check rc $?"; tail -16 $OUT/gpu_check.txt; date -u ;;
  run)
    timeout 470 bench/committed_run.sh .device/final $OUT 330; echo "committed_run rc $?"
    [ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run ;;
esac
