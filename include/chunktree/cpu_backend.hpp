// The CPU backend: runs a plan exactly in fp32, threads across items and heads.
// It is the oracle the GPU kernels are tested against, next to the fp64 reference.
#pragma once

#include "chunktree/attention.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::cpu {

// q: [batch, num_q_heads, head_dim] in the caller's batch order, any dtype, on the CPU.
PartialStates partial_states(const PrefixCache& cache, const Plan& plan, int layer,
                             const ConstTensorView& q, const AttentionParams& params = {});

// Attention for every batch entry: out [batch, num_q_heads, head_dim] (any dtype), and if
// lse has data, lse [batch, num_q_heads] in fp32 (natural log).
void attend(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
            const TensorView& out, const TensorView& lse = {}, const AttentionParams& params = {});

}  // namespace chunktree::cpu
