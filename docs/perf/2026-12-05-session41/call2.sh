#!/usr/bin/env bash
# Session 41, call 2: the committed run of main at 2125387 (74, 76 and 77 merged) from
# .device/s41c (the CLI and wheel of exp77 at 2125387, which main fast-forwarded to). Session 40 wrote
# it as next_call.sh; what it says of 74 and 76 holds; 77 adds: the engine path's decode loop
# (chunktree-paged-graph) b64_p4k GPU part ~18 % shorter (call 1: 54.1 -> 44.8 us a layer), b256_p2k ~14 %.
#   scripts/fetch-cutlass && cmake --preset default && ninja -C build/default
#   the wheel: python3.12 -m pip wheel . --no-deps -w W (scikit-build-core, nanobind; bench/README.md)
#   the FlashInfer bundle: bench/README.md "Wheels" (.carry/bundle.tgz; 14 minutes here on 2 cores)
#   mkdir -p .device/s41c/wheel && cp build/default/tools/chunktree .device/s41c/ && cp W/*.whl .device/s41c/wheel/
# Carry [".device/s41c", ".carry"] (the GPU test binary does not fit beside docs/perf and the bundle
# in 64 MiB: the unit tests run in next_gpu_check.sh).
# Prediction against session 40's run (1643e1c; on the same card kind): every `chunktree bench` row
# the same (it times graph replays, whose order 74 does not change: session 40 call 4); the decode
# loop's graph rows the same; its eager `chunktree` rows the same too: their host work (2.3-3.3 ms a
# step) bounds them, the GPU finishing each layer before the host issues the next (session 40's
# eager calls, 11-21 % faster, were timed with the GPU ahead of nothing else).
# host.csv: make_plan_with_split_uneven (new, KERNEL_NOTES 76) at B = 1024 ~100-150 us against
# make_plan_with_split's ~50 (the search alone here: 63 us over distinct lengths against 4.1 over
# equal ones; the device's host 1-2x slower; the plan itself a little longer with 1024 distinct spans).
start=$SECONDS
timeout 500 bench/committed_run.sh .device/s41c $OUT 440; echo "committed_run rc $? at $((SECONDS - start)) s"
[ -d $OUT/run ] && tar -C $OUT -czf $OUT/run.tgz run && rm -rf $OUT/run
date -u
