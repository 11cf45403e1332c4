// The CPU backend: runs a plan exactly in fp32, threads across items and heads.
// It is the oracle the GPU kernels are tested against, next to the fp64 reference.
#pragma once

#include "chunktree/attention.hpp"
#include "chunktree/levels.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::cpu {

// q: [batch · queries_per_seq, num_q_heads, head_dim] in the caller's batch order (the plan's
// query tokens of batch entry b at rows b · queries_per_seq + i), any dtype, on the CPU. States
// are numbered as in Plan::items: state s of query token i is s · queries_per_seq + i.
PartialStates partial_states(const PrefixCache& cache, const Plan& plan, int layer,
                             const ConstTensorView& q, const AttentionParams& params = {});

// Attention for every query token: out [batch · queries_per_seq, num_q_heads, head_dim] (any
// dtype), and if lse has data, lse [batch · queries_per_seq, num_q_heads] in fp32 (natural log).
void attend(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
            const TensorView& out, const TensorView& lse = {}, const AttentionParams& params = {});

// Attention over caller-owned KV in shared levels (chunktree/levels.hpp), everything on the
// CPU; the KV in one dtype (f32, f16 or bf16), q and out in any. params.num_q_heads is unused
// (q's shape gives it).
void attend_levels(const Levels& levels, const ConstTensorView& q, const TensorView& out, const TensorView& lse = {},
                   const AttentionParams& params = {});

}  // namespace chunktree::cpu
