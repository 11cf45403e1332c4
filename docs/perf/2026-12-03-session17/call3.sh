#!/usr/bin/env bash
# NOT RUN (three refused machine starts spent the device time it needed). Session 17, call 3: experiment 39 (the cost model's wgmma tiles refitted to call 2's split sweep
# and dealt onto the SMs) with 38 (persistent wgmma grid when alone), in two variants: A deals the
# wgmma tiles in every plan, B only in plans without mma.sync tiles (mixed plans keep half a wgmma
# tile of tail); against main (81ffba4) on the presets with wide tiles (chunkattn-t3 and small have none).
set -u
x=.device/s17c
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,temperature.gpu --format=csv,noheader; date -u
timeout 200 bench/compare.sh $OUT/r/ab A=$x/chunktree_A main=$x/chunktree_main B=$x/chunktree_B -- hydragen-micro spec-decode flashinfer-cascade > $OUT/r/compare.log 2>&1
echo "compare rc $?"; date -u
tar -C $OUT -czf $OUT/call3.tgz r && rm -rf $OUT/r
