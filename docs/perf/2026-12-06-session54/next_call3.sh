#!/usr/bin/env bash
# For session 55, after next_call2.sh's probe and only if it gains (prepared in session 54, not run):
# experiment 95r, the SM partition chosen by the cost model (branch exp95r, 3957480), against main
# ad73297. Recalibrate cost_model::wgmma_sms from the probe's sweep first if its best k per row differs
# from the model's (KERNEL_NOTES session 54, 95r), and rebuild `.device/s55c/e95r.gz` and
# `e95r_gpu_tests.xz`. (a) `bench/compare.sh` over the presets with both tile kinds, main / e95r then
# e95r / main; (b) e95r's `scripts/gpu-check --only` GPU unit suite, --strict quick grid, random
# trees, memcheck and racecheck (the replayed launches' exiting CTAs included). Carry [".device/s55c"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x95r && rm -rf $x && mkdir -p $x/tools $x/tests $OUT/ck
pack() { cd $OUT && for d in ab1 ab2 ck; do [ -d $d ] && tar -czf $d.tgz $d && rm -rf $d; done; date -u; }
trap pack EXIT
gunzip -c .device/s55c/main.gz > $x/main && gunzip -c .device/s55c/e95r.gz > $x/tools/chunktree &&
  xz -dc .device/s55c/e95r_gpu_tests.xz > $x/tests/chunktree_gpu_tests && chmod +x $x/main $x/tools/* $x/tests/* || exit 1
presets=(spec-decode hydragen-micro gqa-llama3 flashinfer-cascade tree)
timeout 300 scripts/gpu-check --no-build --build-dir $x --work /tmp/gc95r --only gpu-unit-tests,quick-grid,random-trees,memcheck,racecheck > $OUT/ck/gpu_check.txt 2>&1
echo "e95r gpu-check rc $?"; cp /tmp/gc95r/*.log $OUT/ck/; grep -A8 "gpu-check summary" $OUT/ck/gpu_check.txt
echo "== checks done ($((SECONDS - start)) s)"
timeout 200 bench/compare.sh $OUT/ab1 main=$x/main e95r=$x/tools/chunktree -- "${presets[@]}" > /dev/null 2>&1
cat $OUT/ab1/compare.md; echo "== A/B pass 1 done ($((SECONDS - start)) s)"
left=$((${CALL_BUDGET_S:-560} - (SECONDS - start)))
[ $left -gt 60 ] && timeout $left bench/compare.sh $OUT/ab2 e95r=$x/tools/chunktree main=$x/main -- "${presets[@]}" > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 done ($((SECONDS - start)) s)"
