#!/usr/bin/env bash
# Session 27, call 4 (device): the ceilings' new method (b31a44a: 100 warm-ups, median of 30) beside
# the old (f8fad90: one warm-up, median of 10), three times each after 3 s idle, then the committed
# run again at b31a44a (kernels those of f8fad90) -- the --strict quick grid and random trees,
# bench/run_all.sh, the targets, the GPU pytest on this build's cp312 wheel.
set -u
x=.device/final
mkdir -p $OUT/run build/default/tools .whl
cp $x/chunktree build/default/tools/
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; $cli info | head -2
for i in 1 2 3; do
  for b in old final; do sleep 3; echo "$b: $(.device/$b/chunktree bench --preset small --csv /tmp/s.csv | grep 'ceilings measured')"; done
done 2>&1 | tee $OUT/ceilings_old_new.txt
$cli gentests --quick /tmp/q > /dev/null; $cli gentrees --count 96 --seed 7 --gpu-dtypes /tmp/t > /dev/null
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/run/check_quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/run/check_quick.txt)/36"
timeout 40 $cli check --strict --backend cuda --jobs 16 /tmp/t/*.txt > $OUT/run/check_trees.txt 2>&1; echo "trees rc $? $(grep -c ^PASSED $OUT/run/check_trees.txt)/96"
tar -C .whl -xzf .carry/bundle.tgz
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
date -u
timeout 330 bench/run_all.sh $OUT/run > $OUT/run/run_all.log 2>&1; echo "run_all rc $?"; date -u
python3 bench/targets.py $OUT/run/chunktree.csv $OUT/run/baselines.csv > $OUT/run/targets.txt 2>&1; tail -20 $OUT/run/targets.txt
grep ceilings $OUT/run/run_all.log | head -2
rm -f $OUT/run/plots.tar
timeout 120 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/run/pytest.txt 2>&1; echo "pytest rc $?"; tail -1 $OUT/run/pytest.txt
tar -C $OUT -czf $OUT/call4run.tgz run ceilings_old_new.txt && rm -rf $OUT/run; date -u
