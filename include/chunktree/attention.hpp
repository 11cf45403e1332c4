// What every backend takes and gives besides the cache and the plan.
#pragma once

#include <vector>

namespace chunktree {

// The largest softmax scale in magnitude any call takes (AttentionParams::scale, PagedShape::sm_scale):
// the kernels take scale · log2 e in fp32, which is inf past about 2.36e38.
inline constexpr float kMaxScale = 2.35e38f;

struct AttentionParams {
  int num_q_heads = 0;  // 0: as many as the cache has kv heads; must be a multiple of them
  float scale = 0.0f;   // 0: 1/sqrt(head_dim); finite, |scale| ≤ kMaxScale
  int num_threads = 0;  // CPU backend: 0 means one per hardware thread (negative: an error)
};

// Partial states of every (item, row) of a plan, all q heads, states numbered as in
// Plan::items. o is normalised; max is the largest scaled score (-inf for no token).
struct PartialStates {
  int num_q_heads = 0;
  int head_dim = 0;
  std::vector<float> o;    // [num_states, num_q_heads, head_dim]
  std::vector<float> lse;  // [num_states, num_q_heads]
  std::vector<float> max;  // [num_states, num_q_heads]
};

}  // namespace chunktree
