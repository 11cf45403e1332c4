#!/usr/bin/env bash
# Session 24, call 6 (device): bench/test_rows.py (its torch tests, the new head-major pools' one
# among them, need torch: the device's) and the GPU pytest of the Python package on main's cp312
# wheel (.device/final, 051882e's src = main's).
set -u
o=/tmp/call6; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee $o/gpu.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/final/wheel/*.whl > /dev/null 2>&1 || echo "pip failed"
PYTHONPATH=/tmp/site timeout 200 python3 -m pytest -q -p no:cacheprovider python/tests bench/test_rows.py > $o/pytest.txt 2>&1; echo "pytest rc $?"
tail -3 $o/pytest.txt
date -u | tee -a $o/gpu.txt
tar czf $OUT/call6.tgz -C /tmp call6
