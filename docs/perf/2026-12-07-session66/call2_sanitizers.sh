#!/usr/bin/env bash
# Session 66's second call, once the H200 committed run is in: gpu-check's quick grids, random trees
# and the three sanitizers on main 9f4854f's CLI and GPU tests (`.device/s65f`), on the same card
# (issue 13 asks for gpu-check green, sanitizers included). Carry [".device/s65f"]. CALL_S: seconds.
start=$SECONDS
call_s=${CALL_S:-540}
nvidia-smi --query-gpu=name,driver_version,clocks.max.memory --format=csv,noheader
x=/tmp/x66san && rm -rf $x && mkdir -p $x/tools $x/tests $OUT/san
gunzip -c .device/s65f/chunktree.gz > $x/tools/chunktree && xz -dc .device/s65f/chunktree_gpu_tests.xz > $x/tests/chunktree_gpu_tests || exit 1
chmod +x $x/tools/chunktree $x/tests/chunktree_gpu_tests
$x/tools/chunktree info | head -3
timeout $((call_s - 20)) scripts/gpu-check --no-build --build-dir $x --work /tmp/gc66 --skip-full-grid \
  --only quick-grid,seq-first-quick-grid,random-trees,memcheck,racecheck,synccheck > $OUT/san/gpu_check.txt 2>&1
echo "== gpu-check rc $? ($((SECONDS - start)) s)"; grep -A10 "gpu-check summary" $OUT/san/gpu_check.txt
