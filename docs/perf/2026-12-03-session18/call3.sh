#!/usr/bin/env bash
# Session 18, call 3 (13:20–13:21 UTC, run as one command line): the GPU pytest on a15b201's cp312
# wheel (.device/s18f/wheel), right after call 2. Result: 459 passed, 1 skipped, 15 warnings in 79.01 s.
tar -C .whl -xzf .whl/bundle.tgz && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl .device/s18f/wheel/*.whl > /dev/null 2>&1
export PYTHONPATH=/tmp/site FLASHINFER_NO_DOWNLOAD=1
date -u; timeout 150 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py 2>&1 | tail -3; date -u
