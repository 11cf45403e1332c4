#!/usr/bin/env bash
# Session 18, call 4: the item split swept on the two rows 42 made slower (gqa-llama3 b64_p2k,
# hydragen b512_p1k_s512) and the spec-decode MHA rows still behind FlashInfer's cascade, with
# a15b201's CLI: which split each row wants, for the next change of the cost model's mixed plans.
set -u
cli=.device/s18f/chunktree
mkdir -p $OUT/r; date -u
for shape in "--batch 64 --heads 32 --kv-heads 8 --prefix 2048 --suffix 512" "--batch 512 --heads 8 --kv-heads 1 --prefix 1024 --suffix 512" "--batch 256 --heads 32 --kv-heads 32 --prefix 4096 --suffix 8 --queries 8" "--batch 64 --heads 32 --kv-heads 32 --prefix 4096 --suffix 8 --queries 8"; do
  for split in default 0 2048 1024 512; do
    flags=""; [ $split != default ] && flags="--split $split"
    echo "== $shape split $split" >> $OUT/r/splits.txt
    timeout 20 $cli bench --repeats 20 --settle-ms 100 $shape $flags >> $OUT/r/splits.txt 2>&1
  done
done
grep -E "^==|chunktree " $OUT/r/splits.txt | grep -v noshare | head -80; date -u
