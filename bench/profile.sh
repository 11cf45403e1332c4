#!/usr/bin/env bash
# Nsight Compute profiles of the partial-state kernels on a few shapes (compute-bound GQA
# sharing, bandwidth-bound decode without sharing, small and large fully shared batches), with the
# GPU's clocks left alone (--clock-control none). Writes OUT/profile_<shape>.txt with duration, DRAM
# and L2 figures, tensor-pipe utilisation, occupancy and the warp stall breakdown; torch SDPA's
# kernels on the two no-share shapes beside them (profile_sdpa_*).
#
#   bench/profile.sh OUT [SHAPE ...]   (default: every shape below)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/profile.sh OUT [SHAPE ...]}
shift
only=" $* "
mkdir -p "$out"
cli=build/default/tools/chunktree
metrics=gpu__time_duration.sum,dram__bytes_read.sum.per_second,dram__throughput.avg.pct_of_peak_sustained_elapsed
metrics+=,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active
metrics+=,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active  # mma.sync and wgmma both
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
metrics+=,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum.pct_of_peak_sustained_elapsed
profile() {  # profile NAME KERNEL_REGEX BENCH_FLAGS...
  local name=$1 kernel=$2; shift 2
  [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
  ncu --clock-control none --metrics "$metrics" --section WarpStateStats --section Occupancy --section LaunchStats \
    -k "regex:$kernel" --launch-skip 3 --launch-count 1 "$cli" bench --repeats 5 "$@" > "$out/profile_$name.txt" 2>&1
  echo "== $name: rc $? ($out/profile_$name.txt)"
}
# torch SDPA's kernels on the no-share shapes, for the bandwidth each side reaches (bench/sdpa_once.py).
profile_sdpa() {  # profile_sdpa NAME BATCH HEADS KV_HEADS LEN
  local name=$1; shift
  [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
  ncu --clock-control none --metrics "$metrics" --section WarpStateStats --section Occupancy --section LaunchStats \
    -k 'regex:(?i)(flash|fmha|attn|attention|sdpa)' --launch-skip 4 --launch-count 4 python3 bench/sdpa_once.py "$@" > "$out/profile_$name.txt" 2>&1
  echo "== $name: rc $? ($out/profile_$name.txt)"
}
profile hydragen_b4096_p8k wgmma_states --batch 4096 --heads 8 --kv-heads 1 --prefix 8192
profile noshare_b32_mha_4k mma_sync_states --batch 32 --heads 32 --kv-heads 32 --suffix 4096
profile noshare_b512_gqa8x1_1k mma_sync_states --batch 512 --heads 8 --kv-heads 1 --suffix 1024
profile shared_b32_mha_1k mma_sync_states --batch 32 --heads 32 --kv-heads 32 --prefix 1024
profile shared_b256_mha_8k wgmma_states --batch 256 --heads 32 --kv-heads 32 --prefix 8192
profile_sdpa sdpa_noshare_b32_mha_4k 32 32 32 4096
profile_sdpa sdpa_noshare_b512_gqa8x1_1k 512 8 1 1024
