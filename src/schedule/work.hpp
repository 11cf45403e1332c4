// Attention work in the one form both backends run: runs of KV tokens addressed by byte offsets
// from a K and a V base, items (runs read whole by a contiguous range of rows) with a state per
// (item, row, query token), and each row's merge list. Two front ends make it: a prefix-cache
// plan (offsets from one layer's pools, the same for every layer) and the levels API (offsets
// are addresses; the bases are 0).
//
// Query token i (of queries_per_seq) of row r is q/out token row_to_batch[r]·queries_per_seq + i.
// It sees position p of a causal item's runs when p ≤ row_limit[r] + i; items that are not causal
// are seen whole. States are stored [state·queries_per_seq + i][q_heads][head_dim].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chunktree/attention.hpp"
#include "chunktree/levels.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::work {

// Both backends' refusal of a plan whose cache version is not the cache's: changed since, or made
// from another cache (versions are unique across caches, so the two look the same).
inline constexpr const char* kStalePlan =
    "the plan is stale or of another cache: the cache changed after it was made, or it was made from another cache; make a new plan from "
    "this cache";

// The runs of one item hold consecutive positions: run r + 1 starts where run r ends. (The wgmma
// kernel relies on it: it counts positions from the item's first run.)
struct KvRun {
  std::uint64_t k_offset = 0;     // bytes from the K base to the run's first token, kv head 0
  std::uint64_t v_offset = 0;     // the same from the V base
  std::int64_t token_stride = 0;  // elements from one token to the next
  std::int64_t head_stride = 0;   // elements from one kv head to the next
  std::int32_t tokens = 0;
  std::int32_t position = 0;  // of the first token, for the causal mask
};

struct Item {
  std::uint32_t run_begin = 0;  // runs [run_begin, run_end), in KV order
  std::uint32_t run_end = 0;
  std::uint32_t row_begin = 0;  // rows [row_begin, row_end) read every token
  std::uint32_t row_end = 0;
  std::uint32_t state_begin = 0;  // state of row r: state_begin + (r - row_begin)
  std::uint32_t causal = 0;       // 1: some query token of some row must not see some position
  std::int64_t tokens = 0;
};

struct Work {
  int queries_per_seq = 1;
  std::vector<KvRun> runs;
  std::vector<Item> items;
  std::uint32_t num_states = 0;
  std::vector<std::uint32_t> row_to_batch;
  std::vector<std::int32_t> row_limit;
  std::vector<std::uint32_t> merge_begin;  // row r merges merge_states[merge_begin[r] .. merge_begin[r+1])
  std::vector<std::uint32_t> merge_states;

  std::uint32_t num_rows() const { return static_cast<std::uint32_t>(row_to_batch.size()); }
  // Every row merges exactly one state (its state is then its output). A row of no state (an
  // engine's padding sequence: the empty state) makes it false, whatever the count of states.
  bool one_state_per_row() const;
  // The most states a row merges (0 for no rows).
  std::uint32_t longest_row_states() const;
};

// The plan's work over the cache's pools; offsets are from a layer's K and V base (PoolView).
// The plan must be current.
Work from_plan(const PrefixCache& cache, const Plan& plan);
// The same into `into`, reusing its arrays' memory.
void from_plan(const PrefixCache& cache, const Plan& plan, Work& into);

// Appends a run of `tokens` positions from `position` to the item whose runs start at `first`:
// it extends the item's last run where it continues that run in memory (K and V, element size
// `element_bytes`) and in position, so adjacent chunks or pages read as one run; else it is made in
// place at the end (a run built aside and copied in stalls on the stores that built it).
void append_run(std::vector<KvRun>& runs, std::size_t first, std::uint64_t k_offset, std::uint64_t v_offset, std::int64_t token_stride,
                std::int64_t head_stride, std::int32_t tokens, std::int32_t position, std::uint64_t element_bytes);

// Sets every item's causal flag from its runs' positions and its rows' limits.
void mark_causal_items(Work& work);

// A call's q heads: `num_q_heads`, or the kv heads for 0; a positive multiple of the kv heads.
// `who` prefixes messages ("cpu backend", "cuda backend"), as for check_levels.
int resolved_q_heads(int num_q_heads, int kv_heads, const char* who);
// A call's softmax scale: `scale`, or 1/√head_dim for 0 (AttentionParams::scale, PagedShape::sm_scale);
// it must pass scale_problem.
float resolved_scale(float scale, int head_dim, const char* who);
// Empty for a scale the kernels can take: finite and at most float32's largest / log2 e in magnitude
// (they take scale · log2 e in fp32, which a larger scale makes inf); else what is wrong with it,
// naming it `name`.
std::string scale_problem(const char* name, float scale);
// Checks a call's outputs on `device`: out [tokens, q_heads, head_dim] in f32, f16 or bf16, lse (where
// given) [tokens, q_heads] in f32, and no byte shared between them (a row's out and lse are written
// together, so one would overwrite the other).
void expect_outputs(const TensorView& out, const TensorView& lse, std::int64_t tokens, int q_heads, int head_dim, Device device,
                    const char* who);

// What a levels call is made of, as check_levels found it.
struct LevelsShape {
  std::int64_t num_seqs = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::bf16;  // of the KV
};

// Checks every tensor, segment and range of a levels call whose KV and q live on `device`, and
// params.num_q_heads, which must be 0 or q's heads (q's shape gives them; what to fix goes in the
// message); `who` prefixes messages ("cpu backend", "cuda backend").
LevelsShape check_levels(const Levels& levels, const ConstTensorView& q, const AttentionParams& params, Device device, const char* who);

// The whole spans of the levels' work (rows and tokens of each non-empty segment, in from_levels'
// order): the cost model's input, before any cut.
void level_spans(const Levels& levels, std::vector<SpanSize>& into);

// The levels' work, items cut to at most item_limit(max_item_tokens) tokens. Offsets are
// addresses: the bases are 0. Rows are the sequences in order; states merge level by level, then
// the sequence's own KV.
Work from_levels(const Levels& levels, const LevelsShape& shape, std::int64_t max_item_tokens);

}  // namespace chunktree::work
