// The backends a plan runs on, and running it there with host inputs and outputs.
#pragma once

#include <string_view>

#include "chunktree/attention.hpp"
#include "chunktree/levels.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::harness {

enum class Backend { cpu, cuda };

std::string_view backend_name(Backend backend);
// Where a cache must live for the backend.
Device backend_device(Backend backend);

// The plan's partial states for q [batch, q_heads, head_dim] on the host (any dtype; the CUDA
// backend takes it in the cache's dtype). Results on the host.
PartialStates backend_partial_states(Backend backend, const PrefixCache& cache, const Plan& plan, const ConstTensorView& q,
                                     const AttentionParams& params);
// Attention into host out [batch, q_heads, head_dim] and lse [batch, q_heads], both f32.
void backend_attend(Backend backend, const PrefixCache& cache, const Plan& plan, const ConstTensorView& q,
                    const TensorView& out, const TensorView& lse, const AttentionParams& params);

// The levels API with everything on the host (KV in one dtype, q any dtype): the CPU backend
// directly; the CUDA backend on copies of every KV buffer and q (in the KV's dtype) on the
// device. out and lse are f32 on the host.
void backend_attend_levels(Backend backend, const Levels& levels, const ConstTensorView& q, const TensorView& out,
                           const TensorView& lse, const AttentionParams& params);

}  // namespace chunktree::harness
