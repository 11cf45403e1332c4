#!/usr/bin/env bash
# Session 39 call 4: does a plan with fewer wgmma tiles let the private tiles run beside them
# (KERNEL_NOTES session 39, 73)? The CLI of a0506a1 (.device/s39r) times the decode loop's layer
# shapes (32 q / 8 kv heads, d 128, chunk 64, one query token, 20 private tokens a sequence) at
# forced item splits, cold L2, graph replays. Carry [".device/s39r"].
set -u
start=$SECONDS
C=.device/s39r/chunktree
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
shape="--heads 32 --kv-heads 8 --dim 128 --suffix 20 --chunk 64"
for pass in 1 2; do
  for split in model 512 576 640 704 768 896 1024 2048; do
    arg=$([ $split = model ] && echo "" || echo "--split $split")
    $C bench --batch 64 --prefix 4096 $shape $arg --csv $OUT/b64_p4k_${split}_$pass.csv > /dev/null 2>&1
    echo "b64_p4k split $split pass $pass: $(grep ',chunktree,' $OUT/b64_p4k_${split}_$pass.csv | cut -d, -f11,16,17,24-)"
  done
  for split in model 256 512 1024; do
    arg=$([ $split = model ] && echo "" || echo "--split $split")
    $C bench --batch 256 --prefix 2048 $shape $arg --csv $OUT/b256_p2k_${split}_$pass.csv > /dev/null 2>&1
    echo "b256_p2k split $split pass $pass: $(grep ',chunktree,' $OUT/b256_p2k_${split}_$pass.csv | cut -d, -f11,16,17,24-)"
  done
done
head -1 $OUT/b64_p4k_model_1.csv
echo "done at $((SECONDS - start)) s"; cd $OUT && tar -czf /tmp/s.tgz . && rm -rf ./* && mv /tmp/s.tgz $OUT/sweep.tgz
