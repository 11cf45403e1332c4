#!/usr/bin/env bash
# Session 12, call 3: experiment 27 (the wgmma consumers mask only steps a row does not see whole;
# 618fbd4). GPU unit tests, quick grid, random and 1000-sequence trees with --strict on this build;
# A/B exp27 (this build) / b26 (c03b7ca) / exp27 again on the presets with wgmma tiles. Beside it,
# niced, FlashInfer's four modules prebuilt for the next call's bench/run_all.sh (this session's
# checkout had no .whl/flashinfer-aot; building it here takes 38 minutes).
set -u
d=.device/s12
cli=build/default/tools/chunktree
tests=build/default/tests/chunktree_gpu_tests
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > /dev/null 2>&1 || echo "pip failed"
(PYTHONPATH=/tmp/site MAX_JOBS=14 nice -n 19 timeout 420 python3 bench/build_flashinfer_aot.py --out /tmp/aot > $OUT/r/aot.txt 2>&1; echo "aot rc $?" >> $OUT/r/aot.txt) &
aot=$!
timeout 150 $tests > $OUT/r/unit.txt 2>&1; echo "unit rc $?"; grep -E "^\[  PASSED|^\[  FAILED" $OUT/r/unit.txt | head
grep -q "^\[  PASSED" $OUT/r/unit.txt && ! grep -q "^\[  FAILED" $OUT/r/unit.txt || { tail -30 $OUT/r/unit.txt; kill $aot; tar -C $OUT -czf $OUT/call3.tgz r; exit 1; }
$cli gentests --quick /tmp/q > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/r/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/r/quick.txt)/36"
$cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null && timeout 60 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/r/trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/r/trees.txt)/96"
$cli gentrees --count 4 --seed 8 --sequences 1000 --gpu-dtypes /tmp/l > /dev/null && timeout 60 $cli check --strict --backend cuda /tmp/l/*.txt > $OUT/r/large.txt 2>&1; echo "large rc $? $(grep -c ^PASSED $OUT/r/large.txt)/4"
date -u
timeout 200 bench/compare.sh $OUT/r/ab exp27=$cli b26=$d/b26 exp27b=$cli -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
wait $aot; tail -2 $OUT/r/aot.txt; ls -la /tmp/aot 2>/dev/null | head
[ -f /tmp/aot/manifest.json ] && tar -C /tmp -czf $OUT/aot.tgz aot
tar -C $OUT -czf $OUT/call3.tgz r && rm -rf $OUT/r; ls -la $OUT; date -u
