#!/usr/bin/env bash
# For the next session: why the engine path's wgmma tiles take twice the cache path's (session 40:
# 38.2 against 19.9 us a layer on one H100 for the same 96 tiles of b64_p4k's prompt, and 75's TMA
# boxes did not change it). Nsight Compute on one replayed layer's wgmma kernel of each path
# (bench/decode_loop.py, 4 layers, chunktree-graph then chunktree-paged-graph), clocks left alone:
# duration, DRAM bytes and throughput, L2 hit rate and sectors per request, the warps' stalls.
# Prediction: the same DRAM bytes (~16 MiB of KV a layer) at half the throughput on the paged kernel,
# its consumers stalled longer on the full barriers (waiting for K and V), and its producer warp
# busy issuing (8 page runs a 128-position stage, each its own address arithmetic and copies: the
# reading of experiments 40 and 75) rather than waiting on memory. Carry [".device/s41r"] (its wheel).
start=$SECONDS
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/s41/site .device/s41r/wheel/*.whl || exit 1
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct
metrics+=,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_requests_srcunit_tex_op_read.sum,l1tex__m_xbar2l1tex_read_bytes.sum
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
for impl in chunktree-graph chunktree-paged-graph; do
  # Warm-up 2 steps (the first eager, then the capture), then 2 replayed steps of 4 layers: skip the
  # eager and captured launches (2 steps x 4 layers) and take 4 replayed ones.
  PYTHONPATH=/tmp/s41/site timeout 200 ncu --clock-control none --graph-profiling node --metrics "$metrics" --section WarpStateStats \
    -k regex:wgmma_states --launch-skip 8 --launch-count 4 python3 bench/decode_loop.py /tmp/ncu_$impl.csv --cases b64_p4k \
    --impls $impl --layers 4 --steps 2 --warmup 2 > $OUT/ncu_$impl.txt 2>&1
  echo "$impl rc $? at $((SECONDS - start)) s"; grep -E "gpu__time_duration|dram__bytes_read.sum |hit_rate|sectors_srcunit|requests_srcunit" $OUT/ncu_$impl.txt | head -12
done
date -u
