#!/usr/bin/env bash
# Session 43, call 2 (after next_call1.sh, if 79d's cache path holds): the engine path on the rows
# where experiment 40 (16-row boxes of a paged pool, session 18) lost 0.6-10.5 %: hydragen-micro's
# compute-bound shared prompts through bench/baselines.py's chunktree-paged (NHD) and
# chunktree-paged-hnd, main's wheel and e79d's in turn. Carry [".device/s43d", ".device/s41c"].
# Prediction: no row slower than main beyond its spread (79d issues a 16-row box per page where 40
# issued them from a one-thread walk; the consumers, not the producer, pace these rows' stages), and
# the rows whose stages are short gain as the decode loop's do.
set -u
mkdir -p $OUT/r
.device/s41c/chunktree bench --preset small --ceilings-json $OUT/r/ceilings.json > /dev/null
.device/s41c/chunktree bench --preset hydragen-micro --cases-json $OUT/r/cases.json > /dev/null
for b in main:s41c e79d:s43d main:s41c; do
  v=${b%%:*}; d=${b#*:}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site_$v .device/$d/wheel/*.whl 2>/dev/null
  PYTHONPATH=/tmp/site_$v timeout 150 python3 bench/baselines.py --cases $OUT/r/cases.json --ceilings $OUT/r/ceilings.json \
    --impl chunktree-paged,chunktree-paged-hnd --out $OUT/r/paged_$v.csv > /dev/null 2>&1; echo "paged $v rc $?"
done
cd $OUT && tar -czf /tmp/next2.tgz . && rm -rf ./* && mv /tmp/next2.tgz $OUT/next_call2.tgz; date -u
