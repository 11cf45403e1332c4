#!/usr/bin/env bash
# Session 14, call 2: call 1 again after its finding (the Python package's torch hook was a helper
# named like its module; the C++ and its GPU unit tests, 73/73 in call 1, are unchanged): the Python suite of the paged front end and
# the CUDA package (FlashInfer beside it, torch.compile, the transformers example); then
# chunktree-paged (NHD, HND) beside FlashInfer's decode and cascade wrappers and chunktree's own
# cache path on five presets, ceilings measured in the same call; host-bench with the paged plan.
set -u
cli=build/default/tools/chunktree
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
tar -C $OUT -czf $OUT/call2.tgz r
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl .device/s14/wheel/*.whl > $OUT/r/pip.txt 2>&1
cp python/chunktree/*.py /tmp/site/chunktree/
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
python3 -c "import torch, transformers, flashinfer; print('torch', torch.__version__, 'transformers', transformers.__version__, 'flashinfer', flashinfer.__version__)"
date -u
timeout 140 python3 -m pytest -q -p no:cacheprovider python/tests/test_paged.py python/tests/test_cuda.py bench/test_rows.py > $OUT/r/pytest.txt 2>&1; echo "pytest rc $?"; tail -4 $OUT/r/pytest.txt
tar -C $OUT -czf $OUT/call2.tgz r
timeout 40 $cli host-bench --repeats 100 --csv $OUT/r/host.csv > $OUT/r/host.txt 2>&1; echo "host-bench rc $?"; grep paged $OUT/r/host.txt
tar -C $OUT -czf $OUT/call2.tgz r
date -u
presets="gqa-llama3 flashinfer-cascade spec-decode tree no-share"
cases=()
for p in $presets; do $cli bench --preset $p --cases-json $OUT/r/cases_$p.json > /dev/null && cases+=(--cases $OUT/r/cases_$p.json); done
timeout 80 $cli bench $(for p in $presets; do echo --preset $p; done) --csv $OUT/r/chunktree.csv --ceilings-json $OUT/r/ceilings.json > $OUT/r/chunktree.txt 2>&1; echo "cli rc $?"
tar -C $OUT -czf $OUT/call2.tgz r
timeout 150 python3 bench/baselines.py "${cases[@]}" --ceilings $OUT/r/ceilings.json --out $OUT/r/baselines.csv \
  --impl flashinfer-decode,flashinfer-cascade,chunktree-paged,chunktree-paged-hnd > $OUT/r/baselines.txt 2>&1; echo "baselines rc $?"
tar -C $OUT -czf $OUT/call2.tgz r
timeout 60 python3 bench/decode_loop.py $OUT/r/decode_loop.csv --cases b64_p4k,b8_p1k_distinct --impls chunktree-graph,chunktree-paged-graph,flashinfer-decode-graph,flashinfer-cascade-graph --ceilings $OUT/r/ceilings.json > $OUT/r/decode_loop.txt 2>&1; echo "decode_loop rc $?"
tar -C $OUT -czf $OUT/call2.tgz r
date -u
rm -f $OUT/r/cases_*.json
tar -C $OUT -czf $OUT/call2.tgz r && rm -rf $OUT/r; date -u
