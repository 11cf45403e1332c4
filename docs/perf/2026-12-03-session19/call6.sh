#!/usr/bin/env bash
# Session 19, call 6: the GPU pytest on main's wheel (call 5's did not run: .whl was not carried).
set -u
x=.device/s19m
mkdir -p $OUT/r; date -u
tar -C .whl -xzf .whl/bundle.tgz
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl $x/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
timeout 150 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $OUT/r/pytest_main.txt 2>&1; echo "pytest main rc $?"; tail -1 $OUT/r/pytest_main.txt
tar -C $OUT -czf $OUT/call6.tgz r && rm -rf $OUT/r; date -u
