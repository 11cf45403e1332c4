#!/usr/bin/env bash
# If 79d's cache path still loses to main's: ncu's source view of one wgmma launch of spec-decode b64_gqa_p4k_s8_q8
# (its shape flags; many stages a CTA) through each CLI, so that the producer's per-stage instructions of the two
# builds can be compared line by line. Carry [".device/s43d", ".device/s41c"].
for run in main:.device/s41c/chunktree e79d:.device/s43d/tools/chunktree; do
  b=${run%%:*}; cli=${run#*:}
  timeout 150 ncu --clock-control none --section SourceCounters --section WarpStateStats --import-source yes -k regex:wgmma_states \
    --launch-skip 3 --launch-count 1 -o /tmp/src_$b $cli bench --backend cuda --batch 64 --heads 32 --kv-heads 8 --dim 128 --prefix 4096 --suffix 8 --chunk 64 --queries 8 > $OUT/run_$b.txt 2>&1
  echo "$b rc $?"; ncu --import /tmp/src_$b.ncu-rep --page source --csv --print-source sass | gzip > $OUT/sass_$b.csv.gz
done
