// The CUDA backend (Hopper): runs a plan on the GPU against a cache whose pools live there.
//
// Two steps, like the plan/run split of serving engines: a DevicePlan uploads a plan once (and
// holds scratch for partial states); attend() then runs it for any layer. All tensors are
// device memory; q and the cache share a dtype (bf16 or f16).
#pragma once

#include <cstdint>
#include <memory>

#include "chunktree/attention.hpp"
#include "chunktree/levels.hpp"
#include "chunktree/paged.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::cuda {

class DevicePlan {
 public:
  // Uploads `plan` before it returns. Throws if the cache is not on the GPU, the plan is stale, or
  // num_q_heads does not fit.
  DevicePlan(const PrefixCache& cache, const Plan& plan, const AttentionParams& params = {});
  // A DevicePlan without a plan yet, for a decode loop: update() gives it each step's plan.
  explicit DevicePlan(const PrefixCache& cache, const AttentionParams& params = {});
  ~DevicePlan();
  DevicePlan(DevicePlan&&) noexcept;
  DevicePlan& operator=(DevicePlan&&) noexcept;
  DevicePlan(const DevicePlan&) = delete;
  DevicePlan& operator=(const DevicePlan&) = delete;

  // Makes `plan` (a current plan of the same cache: its tree may have grown, sequences forked or
  // finished since the last) the one attend() runs. No allocation while it fits the workspace (the
  // first update leaves room for plans up to 4x its size): the plan is written into pinned memory
  // and copied, a section per table, on `stream` (a cudaStream_t; run attend() on the same stream);
  // the host waits only for the previous update's copies to have left the pinned staging. Call it
  // outside any stream capture. CUDA graphs: attend() calls captured on a stream replay whatever
  // plan the last update() gave, with the q, out and lse they were captured with. An updated
  // DevicePlan takes q, out and lse with more rows than the plan's query tokens (the first are
  // used), so capture with buffers of the largest batch. A plan that would not fit the captured
  // workspace or its buffers, or has other query tokens per sequence than the capture, is refused
  // (capacity_exhausted, invalid_argument) and nothing changes; capture again with a new
  // DevicePlan. The DevicePlan must outlive every graph that captured it.
  void update(const PrefixCache& cache, const Plan& plan, void* stream = nullptr);

  const AttentionParams& params() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// `base` with this backend's split policy: make_plan(cache, batch, cuda::plan_options(cache, params,
// base)) cuts the spans it finds into items of a whole span or a power of two (at least 64 tokens
// and a chunk; never more than kMaxItemTokens) or, beside a decode step's short private spans, an
// even part of the longest span (whole chunks and 128-token stages), whichever a cost model of the kernels (tiles per SM, the longest tile, the states
// written and merged) says is fastest, in one pass. (base.max_item_tokens is replaced.)
PlanOptions plan_options(const PrefixCache& cache, const AttentionParams& params = {}, PlanOptions base = {});

// out [batch · queries_per_seq, num_q_heads, head_dim] (bf16, f16 or f32) and, if lse has data,
// lse [batch · queries_per_seq, num_q_heads] in f32 (natural log); q [batch · queries_per_seq,
// num_q_heads, head_dim] in the cache's dtype (query token i of batch entry b at row
// b · queries_per_seq + i). q 16-byte aligned, out aligned to four of its elements. Enqueued on
// `stream` (a cudaStream_t; null: the default stream).
void attend(const PrefixCache& cache, const DevicePlan& plan, int layer, const ConstTensorView& q, const TensorView& out,
            const TensorView& lse = {}, void* stream = nullptr);

// The partial state of every (item, row), copied to the host: for tests and for the seed
// format's per-chunk partials. Synchronous.
PartialStates partial_states(const PrefixCache& cache, const DevicePlan& plan, int layer, const ConstTensorView& q);

// The levels API on the GPU (chunktree/levels.hpp): checks the levels against q (its shape, dtype
// and device; not its data) and uploads their work, with items split by the cost model. The
// KV's addresses are baked in: its buffers must outlive the plan and stay where they are (their
// contents may change between calls). bf16 or f16, 16-byte-aligned buffers. params.num_q_heads must
// be 0 or q's heads (q's shape gives them). Like a DevicePlan, a LevelsPlan serves one attend_levels at a time
// (its state scratch and second stream are shared): do not run one plan on two streams at once.
class LevelsPlan {
 public:
  LevelsPlan(const Levels& levels, const ConstTensorView& q, const AttentionParams& params = {});
  ~LevelsPlan();
  LevelsPlan(LevelsPlan&&) noexcept;
  LevelsPlan& operator=(LevelsPlan&&) noexcept;
  LevelsPlan(const LevelsPlan&) = delete;
  LevelsPlan& operator=(const LevelsPlan&) = delete;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// out [num_seqs · queries_per_seq, num_q_heads, head_dim] (bf16, f16 or f32) and, if lse has
// data, lse [num_seqs · queries_per_seq, num_q_heads] in f32; q as the plan was made for; out
// aligned to four of its elements.
void attend_levels(const LevelsPlan& plan, const ConstTensorView& q, const TensorView& out, const TensorView& lse = {},
                   void* stream = nullptr);

// Attention over an engine's paged KV on the GPU (chunktree/paged.hpp), FlashInfer's plan/run
// split: plan() once per step finds the sharing in the page table and uploads the step's work (as
// DevicePlan::update does: no allocation while it fits, copied on `stream`, outside any capture);
// run() then serves any layer whose pools have the plan's shape, reading the pages in place. The
// work's offsets hold the pools' strides: a plan assumes those of the last run (at first, contiguous
// [pages, 2, ...] pools of `layout`), and a run with other strides loads the work again on its
// stream first (refused under capture, and once a graph has captured runs). CUDA graphs: run()
// calls captured on a stream replay whatever plan the last plan() gave, with the q, out and lse
// they were captured with (the same number of query tokens); once captured, plans of another shape
// (heads, head dim, page size) are refused: they need a PagedAttention of their own, which must
// outlive the graphs. The constructor checks for a Hopper GPU. bf16 or f16 KV; q in the KV's dtype,
// 16-byte aligned; out in bf16, f16 or f32, lse in f32 (optional).
class PagedAttention {
 public:
  explicit PagedAttention(KvLayout layout = KvLayout::nhd);
  ~PagedAttention();
  PagedAttention(PagedAttention&&) noexcept;
  PagedAttention& operator=(PagedAttention&&) noexcept;
  PagedAttention(const PagedAttention&) = delete;
  PagedAttention& operator=(const PagedAttention&) = delete;

  // A table or shape that is refused leaves the last plan in place.
  void plan(const PageTableView& table, const PagedShape& shape, void* stream = nullptr);
  void run(const PagedKv& kv, const ConstTensorView& q, const TensorView& out, const TensorView& lse = {}, void* stream = nullptr);
  // A digest of the last plan as this backend runs it: the sharing found, the rows' order, the
  // pages and the item split. Ranks of a tensor-parallel engine that plan the same page table for
  // their head slices get equal digests (on GPUs with as many SMs), which they can compare.
  std::uint64_t plan_fingerprint() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace chunktree::cuda
