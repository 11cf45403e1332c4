#!/usr/bin/env bash
# For a warm machine (written in session 60): whether finer wide tiles balance the wgmma-bound rows.
# flashinfer-cascade p32k_b256_s256's 64 wgmma tiles each take a kv head's whole 32k prefix and end
# 90-130 µs after the narrow phase (e103_trace/streams.txt); the cost model prices whole spans at 480
# µs and a 16384 split at 484. bench/compare.sh times that row, p8k_b128_s256 and gqa-llama3 b256_p8k
# at the model's split and at fixed splits, with main's CLI (`.device/s54c`, one CTA per narrow tile,
# no partition) and exp104m's (`.device/s60m`, claims and the partition): chunktree's rows, cold L2,
# medians, floors, in OUT/split/compare.md. Carry [".device/s54c", ".device/s60m"]. ~80 s warm.
x=/tmp/x60split && rm -rf $x && mkdir -p $x
gunzip -c .device/s54c/chunktree.gz > $x/main && gunzip -c .device/s60m/chunktree.gz > $x/e104 && chmod +x $x/* || exit 1
while read -r row flags; do
  for split in model 16384 8192 4096; do
    echo "${row}_$split $flags $([ $split = model ] || echo "--split $split")"
  done
done > $x/shapes.txt <<'ROWS'
fi_p32k_b256_s256 --batch 256 --heads 32 --kv-heads 32 --dim 128 --prefix 32768 --suffix 256
fi_p8k_b128_s256 --batch 128 --heads 32 --kv-heads 32 --dim 128 --prefix 8192 --suffix 256
gqa_b256_p8k --batch 256 --heads 32 --kv-heads 8 --dim 128 --prefix 8192 --suffix 512
ROWS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
SHAPES=$x/shapes.txt bench/compare.sh "$OUT/split" main=$x/main e104=$x/e104 -- > /dev/null 2>&1
cat "$OUT/split/compare.md"; tar -C "$OUT" -czf "$OUT/split.tgz" split && rm -rf "$OUT/split"; date -u
