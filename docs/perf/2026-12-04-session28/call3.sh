#!/usr/bin/env bash
# Session 28, call 3 (device): the item split swept on the private preset (ee4bea9's CLI, the
# kernels of f8fad90): experiment 60 found b4_g4_16k 4.8 % faster on one wave of 256 whole-ish tiles
# than on 1.94 waves of 512, a choice the model rated 0.3 % apart; the private rows slowest against
# SDPA (b64_g8_4k, b64_g16_8k: 1.07x) run 512 tiles at the model's split 2048.
set -u
o=$OUT/sweep; mkdir -p $o
{ nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u; } | tee $OUT/gpu.txt
cli=.device/final/chunktree
$cli bench --preset private --csv $o/default.csv > $o/default.txt 2>&1
for t in 0 512 1024 2048 4096 8192; do $cli bench --preset private --split $t --csv $o/split$t.csv > $o/split$t.txt 2>&1; done
$cli bench --preset private --csv $o/default2.csv > $o/default2.txt 2>&1
date -u | tee -a $OUT/gpu.txt
python3 - $o <<'PY'
import csv, sys, glob, os
o = sys.argv[1]
runs = ['default', 'split0', 'split512', 'split1024', 'split2048', 'split4096', 'split8192', 'default2']
table = {}
for r in runs:
    for row in csv.DictReader(open(f'{o}/{r}.csv')):
        if row['impl'] == 'chunktree':
            table.setdefault(row['case'], {})[r] = (float(row['median_us']), row['note'].split(',')[0])
print('| case | ' + ' | '.join(runs) + ' |')
for case, cells in table.items():
    print(f'| {case} | ' + ' | '.join(f'{cells[r][0]:.1f}' + (f' ({cells[r][1]})' if r.startswith('default') else '') for r in runs) + ' |')
PY
