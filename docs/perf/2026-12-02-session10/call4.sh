#!/usr/bin/env bash
# Session 10, call 4: issue 12's rounding report end to end on CUDA. Files of both seed formats
# whose Q, K and V are moved off bf16 (each value times 1 + 0.3 % noise, expected values left as
# the file had them): check --backend cuda must report the rounding, judge the kernel against fp64
# on the rounded inputs (the verdict), and print the file's own comparison beside it.
set -u
cli=build/default/tools/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
$cli gentests --quick /tmp/cf > /dev/null && $cli gentests --seq-first --quick /tmp/sf > /dev/null
mkdir -p /tmp/off
python3 - /tmp/off /tmp/cf/randn_s8_h4_c4.txt /tmp/sf/seqfirst_randn_s4_h4_c4_n2_t224.txt <<'PY'
import os, random, sys
random.seed(1)
out = sys.argv[1]
for path in sys.argv[2:]:
    lines = open(path).read().split("\n")
    chunks = int(lines[0].split()[4])
    for i in range(1, 2 + 2 * chunks):  # Q, then K and V of every chunk
        lines[i] = " ".join(repr(float(x) * (1 + random.uniform(-3e-3, 3e-3))) for x in lines[i].split())
    open(os.path.join(out, "off_" + os.path.basename(path)), "w").write("\n".join(lines))
PY
ls /tmp/off
for rule in "" --strict; do $cli check $rule --backend cuda /tmp/off/*.txt; echo "rc $?"; done 2>&1 | tee $OUT/rounded_check.txt
date -u
