#!/usr/bin/env bash
# For session 55, after next_call2.sh's probe and only if it gains (prepared in session 54, not run):
# experiment 95r, the SM partition chosen by the cost model (branch exp95r, 3957480), against main
# ad73297. Recalibrate cost_model::wgmma_sms from the probe's sweep first if its best k per row differs
# from the model's (KERNEL_NOTES session 54, 95r), and rebuild `.device/s55c/e95r.gz` and
# `e95r_gpu_tests.xz`. (a) `bench/compare.sh` over the presets with both tile kinds, main / e95r then
# e95r / main; (b) e95r's GPU unit suite, --strict quick grids and random trees, and memcheck and
# racecheck on gpu-check's subsets (the replayed launches' exiting CTAs included). Carry [".device/s55c"].
set -u
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x95r && rm -rf $x && mkdir -p $x $OUT/ck
pack() { cd $OUT && for d in ab1 ab2 ck; do [ -d $d ] && tar -czf $d.tgz $d && rm -rf $d; done; date -u; }
trap pack EXIT
gunzip -c .device/s55c/main.gz > $x/main && gunzip -c .device/s55c/e95r.gz > $x/e95r && xz -dc .device/s55c/e95r_gpu_tests.xz > $x/gpu_tests && chmod +x $x/* || exit 1
presets=(spec-decode hydragen-micro gqa-llama3 flashinfer-cascade tree)
cli=$x/e95r
$cli gentests --quick /tmp/q > /dev/null && $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null || exit 1
for g in q t; do timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/$g/*.txt > $OUT/ck/check_$g.txt 2>&1; echo "e95r check $g rc $?: $(grep -c ^PASSED $OUT/ck/check_$g.txt)/$(ls /tmp/$g/*.txt | wc -l)"; done
timeout 120 $x/gpu_tests > $OUT/ck/gpu_unit.txt 2>&1; echo "e95r gpu unit rc $?: $(tail -3 $OUT/ck/gpu_unit.txt | tr '\n' ' ')"
subset=$(grep -o "^subset='[^']*'" scripts/gpu-check | cut -d"'" -f2)
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 $x/gpu_tests --gtest_filter="$subset" > $OUT/ck/memcheck.txt 2>&1; echo "memcheck rc $?: $(tail -1 $OUT/ck/memcheck.txt)"
rsub=$(grep -o "racecheck --error-exitcode 1 \"\$tests\" --gtest_filter='[^']*'" scripts/gpu-check | cut -d"'" -f2)
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $x/gpu_tests --gtest_filter="$rsub" > $OUT/ck/racecheck.txt 2>&1; echo "racecheck rc $?: $(tail -1 $OUT/ck/racecheck.txt)"
echo "== checks done ($((SECONDS - start)) s)"
timeout 200 bench/compare.sh $OUT/ab1 main=$x/main e95r=$x/e95r -- "${presets[@]}" > /dev/null 2>&1
cat $OUT/ab1/compare.md; echo "== A/B pass 1 done ($((SECONDS - start)) s)"
left=$((${CALL_BUDGET_S:-560} - (SECONDS - start)))
[ $left -gt 60 ] && timeout $left bench/compare.sh $OUT/ab2 e95r=$x/e95r main=$x/main -- "${presets[@]}" > /dev/null 2>&1
cat $OUT/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 done ($((SECONDS - start)) s)"
