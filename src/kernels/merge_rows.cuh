// The merge of each output row's partial states into out and lse (src/kernels/merge_rows.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "chunktree/types.hpp"
#include "kernels/launch_setup.cuh"

namespace chunktree::kernels {

struct RowMergeArgs {
  const std::uint32_t* merge_begin;   // row r merges merge_states[merge_begin[r] .. merge_begin[r + 1]) in order
  const std::uint32_t* merge_states;
  const std::uint32_t* row_to_batch;  // row r is written at token row_to_batch[r] · queries + query token
  const float* state_o;               // [states · queries, q_heads, head_dim]
  const float* state_lse;             // [states · queries, q_heads]
  void* out;                          // [rows · queries, q_heads, head_dim] in out_dtype
  float* lse;                         // [rows · queries, q_heads] or null
  int q_heads;
  int queries;
  // The rows to merge: rows, or (a launch that a CUDA graph replays for later schedules) the count
  // in the workspace at live_rows, which the grid was sized for at most `rows` of.
  std::uint32_t rows;
  const std::uint32_t* live_rows;
  // The most states a row merges (in the plan loaded when a replayed merge was captured): the
  // launch reads more states' o at once where it is above four (kernels/merge_rows.cu).
  std::uint32_t longest_row_states;
};

// `chained`: launched chained to the states kernel before it on `stream` (kernels/launch_setup.cuh),
// which must let it start. Nothing before the merge's wait for the previous kernel reads a state:
// the wait covers every kernel the merge depends on, whether an event the stream waited for (the
// join of a second stream) ordered one in full or a captured graph made its edge programmatic.
void launch_merge_rows(const RowMergeArgs& args, int head_dim, DType out_dtype, Grid grid, cudaStream_t stream, bool chained);

#if CHUNKTREE_TILE_TRACE
// Built with the CMake option CHUNKTREE_TILE_TRACE: the merge's warps' moments in its last eager
// launch, written once `stream` has finished it if `keep`, else forgotten (kernels/tile_trace.cuh).
void write_merge_trace(cudaStream_t stream, bool keep);
#endif

}  // namespace chunktree::kernels
