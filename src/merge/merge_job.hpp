// One call of the merge primitives (chunktree/merge.hpp) as both devices run it: per (token,
// head), the states of `first` (parts of it, in order) and then, if present, one of `second`.
#pragma once

#include <cstdint>

#include "chunktree/numeric.hpp"
#include "chunktree/state.hpp"
#include "chunktree/types.hpp"

namespace chunktree::merging {

struct MergeSource {
  const void* o = nullptr;  // null: no such source
  const float* lse = nullptr;
  std::int64_t o_token_stride = 0;  // elements
  std::int64_t o_part_stride = 0;
  std::int64_t lse_token_stride = 0;
  std::int64_t lse_part_stride = 0;
  int parts = 0;
};

struct MergeJob {
  MergeSource first;
  MergeSource second;
  DType in_dtype = DType::f32;
  DType out_dtype = DType::f32;
  void* out_o = nullptr;  // [tokens, heads, head_dim]
  float* out_lse = nullptr;  // [tokens, heads]
  std::int64_t tokens = 0;
  int heads = 0;
  int head_dim = 0;
};

// The merged o at (token, head, dim) and the merged lse of (token, head). Reads only that element
// of every part's o, so an output that aliases an input is safe element by element.
CHUNKTREE_HOST_DEVICE inline float merge_element(const MergeJob& job, std::int64_t token, int head, int dim, float& merged_lse) {
  StateMerger merger;
  float accumulated = 0.0f;
  const MergeSource* sources[2] = {&job.first, &job.second};
  for (const MergeSource* source : sources) {
    for (int part = 0; part < source->parts; ++part) {
      const float lse = source->lse[token * source->lse_token_stride + part * source->lse_part_stride + head];
      const StateMerger::Weights weights = merger.add(lse);
      const std::int64_t index = token * source->o_token_stride + part * source->o_part_stride + static_cast<std::int64_t>(head) * job.head_dim + dim;
      // An empty part's o is never read. A part whose weight underflows to 0 is: 0 · NaN must stay NaN,
      // whichever place the part has (as in the kernels' P · V and the row merge).
      const float o = lse == -INFINITY ? 0.0f : load_element(source->o, job.in_dtype, index);
      accumulated = accumulated * weights.previous + o * weights.part;
    }
  }
  merged_lse = merger.merged_lse();
  return accumulated * merger.inverse_weight();
}

// The CUDA side (src/merge/merge.cu).
void merge_on_gpu(const MergeJob& job, void* stream);

}  // namespace chunktree::merging
