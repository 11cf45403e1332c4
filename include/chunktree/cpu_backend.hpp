// The CPU backend: runs a plan with scores in fp32 and sums in fp64 (of fp32 blocks), threads across items and heads.
// It is the oracle the GPU kernels are tested against, next to the fp64 reference.
#pragma once

#include <cstdint>
#include <memory>

#include "chunktree/attention.hpp"
#include "chunktree/levels.hpp"
#include "chunktree/paged.hpp"
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
// CPU; the KV in one dtype (f32, f16 or bf16), q and out in any. params.num_q_heads must be 0 or
// q's heads (q's shape gives them).
void attend_levels(const Levels& levels, const ConstTensorView& q, const TensorView& out, const TensorView& lse = {},
                   const AttentionParams& params = {});

// Attention over an engine's paged KV (chunktree/paged.hpp) on the CPU, in the same two steps as
// the GPU's: plan() once per step (it checks and copies the page table), run() for every layer. The
// KV in f32, f16 or bf16; q and out [query tokens, num_qo_heads, head_dim] in any dtype, lse
// [query tokens, num_qo_heads] in f32 if it has data. params.num_q_heads and scale must be 0 (the
// plan's shape gives them: num_qo_heads, sm_scale); num_threads as for attend().
class PagedAttention {
 public:
  explicit PagedAttention(const AttentionParams& params = {});
  ~PagedAttention();
  PagedAttention(PagedAttention&&) noexcept;
  PagedAttention& operator=(PagedAttention&&) noexcept;

  // A table or shape that is refused leaves the last plan in place.
  void plan(const PageTableView& table, const PagedShape& shape);
  void run(const PagedKv& kv, const ConstTensorView& q, const TensorView& out, const TensorView& lse = {}) const;
  // A digest of the last plan as this backend runs it (see cuda::PagedAttention::plan_fingerprint).
  std::uint64_t plan_fingerprint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chunktree::cpu
