// The last stage of a call: every output row's partial states (one per item the row reads, in plan
// order) merged per query token and q head into out and lse, in the caller's row order.
//
// One warp per (row, query token, q head). The row's states are independent reads, so the warp
// reads them all at once instead of one after another: lanes load 32 states' lse at a time and
// reduce the maximum and the weights' sum with shuffles; then each lane accumulates its D / 32 dims
// over the states, several states' o loaded at once (the width, below). A dependent read per state (the old loop) cost
// a memory round trip each: ~1 µs per state for rows split into tens of items.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "chunktree/state.hpp"
#include "chunktree/types.hpp"
#include "runtime/check.cuh"
#include "kernels/launch_setup.cuh"
#include "kernels/merge_rows.cuh"
#include "kernels/tile_trace.cuh"

namespace chunktree::kernels {
namespace {

constexpr int kWarpsPerBlock = 4;  // q heads per block

// States whose o a lane reads at once: 4, or (a plan with a row of more than 4 states, at d 64 and
// 128) 32 floats of them. The wide reads save a round trip per 4 states of such rows, and cost half
// the blocks an SM holds (72 registers against 40 at d 128): they lose where many rows merge few
// states (docs/KERNEL_NOTES.md, experiments 71 and 71b).
constexpr int kNarrowInFlight = 4;
template <int D>
constexpr int kWideInFlight = std::max(kNarrowInFlight, 32 / (D / 32));

__device__ void store_output(float* out, float value) { *out = value; }
__device__ void store_output(__nv_bfloat16* out, float value) { *out = __float2bfloat16_rn(value); }
__device__ void store_output(__half* out, float value) { *out = __float2half_rn(value); }

__device__ float warp_max(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}
__device__ float warp_sum(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// One warp's (row, query token, q head).
template <typename Out, int D, int kInFlight>
__device__ void merge_row(const RowMergeArgs& args, std::uint32_t row, int token, int head, tile_trace::Clock& clock) {
  constexpr int kDimsPerLane = D / 32;  // this lane's dims: lane + 32 · i
  const int lane = static_cast<int>(threadIdx.x % 32);
  const std::uint32_t begin = args.merge_begin[row];
  const int count = static_cast<int>(args.merge_begin[row + 1] - begin);
  const auto state_head = [&](std::uint32_t state) {
    return (static_cast<std::int64_t>(state) * args.queries + token) * args.q_heads + head;
  };
  // The host's tables are read before the states kernels have finished (a chained launch): the
  // output row and this lane's first state of the list. No state is read before the wait.
  const std::int64_t out_head = (static_cast<std::int64_t>(args.row_to_batch[row]) * args.queries + token) * args.q_heads + head;
  const std::uint32_t lane_state = lane < count ? args.merge_states[begin + lane] : 0;
  const auto state_at = [&](int i) { return i == lane ? lane_state : args.merge_states[begin + i]; };
  wait_for_previous_kernel();
  clock.waited();

  // The largest lse; NaN anywhere makes the whole result NaN (a bad input must not vanish).
  float top = -INFINITY;
  bool nan = false;
  for (int i = lane; i < count; i += 32) {
    const float lse = args.state_lse[state_head(state_at(i))];
    nan |= is_nan(lse);
    top = fmaxf(top, lse);
  }
  top = warp_max(top);
  nan = __any_sync(0xffffffffu, nan);

  float accumulated[kDimsPerLane] = {};
  float weight_sum = 0.0f;
  for (int batch = 0; batch < count; batch += 32) {
    // Lane j holds the weight and the o row of state batch + j; an empty state weighs 0 and its o
    // is never read. A state whose weight underflows to 0 is still read: 0 · NaN must stay NaN.
    float weight = 0.0f;
    const float* o_row = nullptr;
    if (batch + lane < count) {
      const std::int64_t at = state_head(state_at(batch + lane));
      const float lse = args.state_lse[at];
      if (lse != -INFINITY) {
        weight = expf(lse - top);
        o_row = args.state_o + at * D;
      }
    }
    weight_sum += weight;
    // kInFlight states' o loaded before any is used, so that their reads overlap.
    const int in_batch = min(32, count - batch);
    for (int first = 0; first < in_batch; first += kInFlight) {
      float w[kInFlight];
      float values[kInFlight][kDimsPerLane];
#pragma unroll
      for (int k = 0; k < kInFlight; ++k) {
        const int j = (first + k) % 32;
        const bool in = first + k < in_batch;
        w[k] = in ? __shfl_sync(0xffffffffu, weight, j) : 0.0f;
        const auto* shuffled = reinterpret_cast<const float*>(__shfl_sync(0xffffffffu, reinterpret_cast<std::uintptr_t>(o_row), j));
        const float* o = in ? shuffled : nullptr;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) values[k][i] = o != nullptr ? o[lane + 32 * i] : 0.0f;
      }
#pragma unroll
      for (int k = 0; k < kInFlight; ++k) {
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) accumulated[i] += w[k] * values[k][i];
      }
    }
  }
  weight_sum = warp_sum(weight_sum);

  const bool empty = top == -INFINITY && !nan;
  const float inverse = nan ? NAN : (empty ? 0.0f : 1.0f / weight_sum);
  Out* out = static_cast<Out*>(args.out) + out_head * D;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) store_output(out + lane + 32 * i, accumulated[i] * inverse);
  if (lane == 0 && args.lse != nullptr) args.lse[out_head] = nan ? NAN : (empty ? -INFINITY : top + logf(weight_sum));
}

// Block (x, y) merges q heads 4y..4y+3 of (row, query token) unit x; persistent, of units x,
// x + gridDim.x, ... up to the live count. The grid of one block per unit has no loop: the loop
// around the merge cost 0.6–1 µs per call on short calls (docs/KERNEL_NOTES.md, 18c).
template <typename Out, int D, bool kPersistent, int kInFlight>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) merge_rows_kernel(const RowMergeArgs args) {
  tile_trace::Clock clock;  // a trace build's: this warp's entry, its wait's return and its exit
  const int warp = static_cast<int>(threadIdx.x / 32);
  const auto leave = [&] {
    if (threadIdx.x % 32 == 0) clock.left((blockIdx.y * gridDim.x + blockIdx.x) * kWarpsPerBlock + warp);
  };
  const int head = static_cast<int>(blockIdx.y) * kWarpsPerBlock + warp;
  if (head >= args.q_heads) {
    leave();
    return;
  }
  const auto queries = static_cast<std::uint32_t>(args.queries);
  if constexpr (!kPersistent) {
    merge_row<Out, D, kInFlight>(args, blockIdx.x / queries, static_cast<int>(blockIdx.x % queries), head, clock);
  } else {
    const std::uint32_t rows = args.live_rows == nullptr ? args.rows : min(*args.live_rows, args.rows);
    for (std::uint32_t unit = blockIdx.x; unit < rows * queries; unit += gridDim.x) {
      merge_row<Out, D, kInFlight>(args, unit / queries, static_cast<int>(unit % queries), head, clock);
    }
    // A block with no unit (all of them where the live plan's states kernels wrote the output) ends
    // no sooner than the kernel it may be chained to, as one that merged does: what follows on the
    // stream may read the output or load the next plan's tables over the live counts.
    if (blockIdx.x >= rows * queries) {
      wait_for_previous_kernel();
      clock.waited();
    }
  }
  leave();
}

template <typename Out, int D, int kInFlight>
void launch_with_width(const RowMergeArgs& args, Grid grid_kind, cudaStream_t stream, bool chained) {
  std::uint32_t units = args.rows * static_cast<std::uint32_t>(args.queries);
  const auto head_blocks = static_cast<std::uint32_t>((args.q_heads + kWarpsPerBlock - 1) / kWarpsPerBlock);
  if (units == 0) return;
  if (grid_kind == Grid::one_per_tile) {
    launch_kernel(merge_rows_kernel<Out, D, false, kInFlight>, dim3(units, head_blocks), 32 * kWarpsPerBlock, 0, stream, chained, args);
  } else {  // one wave: as many blocks of four warps as the SMs hold at once (16 each at the narrow width, as before 71b)
    auto* kernel = merge_rows_kernel<Out, D, true, kInFlight>;
    static std::array<std::atomic<int>, kMaxDevices> resident{};
    const int per_sm = kInFlight == kNarrowInFlight ? 16 : resident_blocks_per_sm(reinterpret_cast<const void*>(kernel), 32 * kWarpsPerBlock, resident);
    units = std::min(units, std::max(1u, static_cast<std::uint32_t>(per_sm * multiprocessor_count()) / head_blocks));
    launch_kernel(kernel, dim3(units, head_blocks), 32 * kWarpsPerBlock, 0, stream, chained, args);
  }
  tile_trace::note_launch(stream, 0, units * head_blocks * kWarpsPerBlock);  // a warp a unit
}

template <typename Out, int D>
void launch_with_dim(const RowMergeArgs& args, Grid grid_kind, cudaStream_t stream, bool chained) {
  if constexpr (kWideInFlight<D> > kNarrowInFlight) {
    if (args.longest_row_states > kNarrowInFlight) return launch_with_width<Out, D, kWideInFlight<D>>(args, grid_kind, stream, chained);
  }
  launch_with_width<Out, D, kNarrowInFlight>(args, grid_kind, stream, chained);
}

template <typename Out>
void launch(const RowMergeArgs& args, int head_dim, Grid grid_kind, cudaStream_t stream, bool chained) {
  switch (head_dim) {
    case 64: return launch_with_dim<Out, 64>(args, grid_kind, stream, chained);
    case 128: return launch_with_dim<Out, 128>(args, grid_kind, stream, chained);
    case 256: return launch_with_dim<Out, 256>(args, grid_kind, stream, chained);
  }
  throw Error(ErrorCode::unsupported, "cuda backend: head_dim " + std::to_string(head_dim) + " is not 64, 128 or 256");
}

}  // namespace

#if CHUNKTREE_TILE_TRACE
void write_merge_trace(cudaStream_t stream, bool keep) { tile_trace::write(stream, ".merge", keep); }
#endif

void launch_merge_rows(const RowMergeArgs& args, int head_dim, DType out_dtype, Grid grid, cudaStream_t stream, bool chained) {
  switch (out_dtype) {
    case DType::f32: return launch<float>(args, head_dim, grid, stream, chained);
    case DType::bf16: return launch<__nv_bfloat16>(args, head_dim, grid, stream, chained);
    case DType::f16: return launch<__half>(args, head_dim, grid, stream, chained);
  }
}

}  // namespace chunktree::kernels
