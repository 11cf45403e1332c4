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

# Call C, optional (~120 s; a diagnostic, no change): where the engine path's rows of 128 tiles lose
# to the cache path (session 30: private b64_g32_16k 174 µs paged against 151 on the CLI, the same
# plan of 128 tiles). ncu's kernel durations of both paths on the private preset's two 128-tile rows,
# so that the gap splits into the mma.sync kernel's time (pages, grid, claims) and the rest (the empty
# wgmma kernel, the merge, the graph).
#   bash docs/perf/2026-12-04-session30/next/next_calls.sh where-paged-loses
if [ "$1" = where-paged-loses ]; then
  w=/tmp/wpl; rm -rf $w; mkdir -p $w; cli=.device/final/chunktree
  python3 -m pip install -q --no-index --no-deps --no-compile --target $w/site .device/final/wheel/*.whl
  for c in "--batch 64 --heads 32 --kv-heads 1 --suffix 16384" "--batch 64 --heads 32 --kv-heads 2 --suffix 8192"; do
    tag=$(echo $c | tr -d ' -'); $cli bench $c --dim 128 --chunk 64 --cases-json $w/$tag.json
    timeout 100 ncu --kernel-name regex:"mma_sync|wgmma|merge" --metrics gpu__time_duration.sum --csv \
      $cli bench $c --dim 128 --chunk 64 --repeats 20 > $OUT/ncu_cli_$tag.csv 2> $w/ncu_cli_$tag.err
    PYTHONPATH=$w/site timeout 150 ncu --target-processes all --kernel-name regex:"mma_sync|wgmma|merge" --metrics gpu__time_duration.sum --csv \
      python3 bench/baselines.py --cases $w/$tag.json --ceilings docs/perf/2026-12-04-session30-run/ceilings.json --out $w/p.csv \
      --impl chunktree-paged --repeats 20 --warmups 5 > $OUT/ncu_paged_$tag.csv 2> $w/ncu_paged_$tag.err
    echo "$tag: cli rc/paged done"
  done
fi
