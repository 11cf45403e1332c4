#!/usr/bin/env bash
# Session 18 call 1 (session 17's call 5): the GPU pytest on main (36-39 never met it),
# experiment 40 (TMA boxes for pages of 16) checked and timed
# against main on the paged rows, and 39's variant A against main. Build here first, stripped into
# .device/s18: main's CLI (chunktree_main) and cp312 wheel (wheel_main/); exp40-page-boxes' CLI,
# GPU tests and wheel (chunktree_exp40, gpu_tests_exp40, wheel_exp40/; from the branch or
# exp40.patch); the CLI of main with variant A's cost model (chunktree_A; session 17's
# /tmp/cost_A.cpp is gone: A is B without the mixed-plan branch of cost_model.cpp's micros()).
set -u
x=.device/s18
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
tar -C .whl -xzf .whl/bundle.tgz
for v in main exp40; do
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site_$v .whl/*.whl $x/wheel_$v/*.whl > /dev/null 2>&1 || echo "pip $v failed"
done
export FLASHINFER_NO_DOWNLOAD=1
PYTHONPATH=/tmp/site_main timeout 110 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/r/pytest_main.txt 2>&1; echo "pytest main rc $?"; tail -1 $OUT/r/pytest_main.txt
timeout 100 $x/gpu_tests_exp40 > $OUT/r/unit_exp40.txt 2>&1; echo "unit exp40 rc $?"; grep -E "^\[  (PASSED|FAILED)" $OUT/r/unit_exp40.txt
PYTHONPATH=/tmp/site_exp40 timeout 110 python3 -m pytest -q -p no:cacheprovider python/tests -k "paged or Paged" > $OUT/r/pytest_exp40.txt 2>&1; echo "pytest exp40 (paged) rc $?"; tail -1 $OUT/r/pytest_exp40.txt
$x/chunktree_main gentests --quick /tmp/q > /dev/null; $x/chunktree_main gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $x/chunktree_exp40 check --strict --backend cuda --jobs 16 /tmp/q/*.txt /tmp/t/*.txt > $OUT/r/check_exp40.txt 2>&1; echo "exp40 strict rc $? $(grep -c ^PASSED $OUT/r/check_exp40.txt)/132"
tar -C $OUT -czf $OUT/call1.tgz r
$x/chunktree_main bench --preset small --ceilings-json $OUT/r/ceilings.json > /dev/null  # the ceilings, measured
$x/chunktree_main bench --preset hydragen-micro --cases-json $OUT/r/cases.json > /dev/null
for v in main exp40 main; do
  PYTHONPATH=/tmp/site_$v timeout 90 python3 bench/baselines.py --cases $OUT/r/cases.json --ceilings $OUT/r/ceilings.json --impl chunktree-paged,chunktree-paged-hnd --out $OUT/r/paged_$v.csv > /dev/null 2>&1; echo "paged $v rc $?"
done
timeout 120 bench/compare.sh $OUT/r/ab A=$x/chunktree_A main=$x/chunktree_main -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1; echo "compare rc $?"
for split in 0 128 512; do  # P5: which small rows one launch (split 0: no merge where a row reads one item) would bring to what
  timeout 40 $x/chunktree_main bench --preset small --split $split --csv $OUT/r/small_split$split.csv > /dev/null 2>&1; echo "small split $split rc $?"
done
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $OUT/r; date -u
