#!/usr/bin/env bash
# Session 11, call 5 (the device time's last ~2 minutes): the final build (37165b4; its kernels'
# PTX is a2ed4da's wgmma and fe010e9's mma.sync): quick grid with --strict, then ncu --set full of
# the wgmma kernel on hydragen b4096_p8k_s0 with per-instruction stall samples.
set -u
cli=build/default/tools/chunktree
mkdir -p $OUT/p; date -u
$cli gentests --quick /tmp/q > /dev/null && timeout 30 $cli check --strict --backend cuda --jobs 16 /tmp/q/*.txt > $OUT/p/quick.txt 2>&1; echo "quick rc $? $(grep -c ^PASSED $OUT/p/quick.txt)/36"
timeout 40 ncu --clock-control none --set full --import-source no -k regex:wgmma_states --launch-skip 3 --launch-count 1 -o $OUT/p/wg_new $cli bench --repeats 5 --batch 4096 --heads 8 --kv-heads 1 --prefix 8192 > $OUT/p/ncu_new.log 2>&1; echo "ncu rc $?"
ncu -i $OUT/p/wg_new.ncu-rep --page details > $OUT/p/wg_new.txt 2>&1
ncu -i $OUT/p/wg_new.ncu-rep --page source --csv --print-source sass > $OUT/p/wg_new_sass.csv 2>&1
rm -f $OUT/p/*.ncu-rep; tar -C $OUT -czf $OUT/call5.tgz p && rm -rf $OUT/p; date -u
