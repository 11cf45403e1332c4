// The CPU backend: runs a plan exactly in fp32, threads across items and heads.
// It is the oracle the GPU kernels are tested against, next to the fp64 reference.
#pragma once

#include <cstdint>
#include <vector>

#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::cpu {

struct AttentionParams {
  int num_q_heads = 0;    // 0: as many as the cache has kv heads; must be a multiple of them
  float scale = 0.0f;     // 0: 1/sqrt(head_dim)
  int num_threads = 0;    // 0: one per hardware thread
};

// Partial states of every (item, row) of a plan, all q heads: states are numbered as in
// Plan::items. o is normalised; max is the largest scaled score (-inf for no token).
struct PartialStates {
  int num_q_heads = 0;
  int head_dim = 0;
  std::vector<float> o;    // [num_states, num_q_heads, head_dim]
  std::vector<float> lse;  // [num_states, num_q_heads]
  std::vector<float> max;  // [num_states, num_q_heads]
};

// q: [batch, num_q_heads, head_dim] in the caller's batch order, any dtype, on the CPU.
PartialStates partial_states(const PrefixCache& cache, const Plan& plan, int layer,
                             const ConstTensorView& q, const AttentionParams& params = {});

// Attention for every batch entry: out [batch, num_q_heads, head_dim] (any dtype), and if
// lse has data, lse [batch, num_q_heads] in fp32 (natural log).
void attend(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
            const TensorView& out, const TensorView& lse = {}, const AttentionParams& params = {});

}  // namespace chunktree::cpu
