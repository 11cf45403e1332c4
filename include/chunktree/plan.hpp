// The plan: a batch of sequences turned into attention work over the cache's tree.
//
// Rows are the batch's sequences in depth-first order of the tree, so that every
// tree node is read by a contiguous range of rows. Each work item is one KV span
// (a list of pieces) with the row range that reads it; each (item, row) pair yields
// one partial state (o, lse), and each row merges its states. The format is plain
// data that the CPU and CUDA backends both run; docs/DESIGN.md describes it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "chunktree/prefix_cache.hpp"

namespace chunktree {

// A whole span (before any split) as a split policy sees it: the rows that read it, its tokens.
struct SpanSize {
  std::int64_t rows = 0;
  std::int64_t tokens = 0;
};

// No item of any schedule (plan, levels or paged) holds more KV tokens than this, whatever the
// split asks: the CUDA kernels sum a row's weights in fp32, one term at a time per thread, and that
// sum drifts with the count of terms (H200: lse 4.2e-7 off at 2^12 tokens in one item, 3.8e-4 at
// 2^20; docs/KERNEL_NOTES.md, session 34). Longer spans become several items merged exactly in
// fp32. Of the benchmark's plans only flashinfer-cascade p32k_b256_s256's chunktree-noshare changes
// (DESIGN.md, "Items").
inline constexpr std::int64_t kMaxItemTokens = std::int64_t{1} << 15;

// The tokens an item may hold under a split of max_item_tokens (0: whole spans): never more than
// kMaxItemTokens. Every schedule cuts at it, and the CUDA cost model prices the same cut.
constexpr std::int64_t item_limit(std::int64_t max_item_tokens) {
  return max_item_tokens > 0 && max_item_tokens < kMaxItemTokens ? max_item_tokens : kMaxItemTokens;
}

struct PlanOptions {
  // Spans read by fewer sequences than this are private: each reader gets its own item.
  int min_shared_rows = 2;
  // Items hold at most this many KV tokens (longer spans are split at piece boundaries);
  // 0 leaves spans whole up to kMaxItemTokens. When set, it must be at least the chunk size.
  std::int64_t max_item_tokens = 0;
  // Query tokens per sequence: the last queries_per_seq tokens of every sequence (already in the
  // cache, e.g. appended draft tokens) are queries, each seeing the sequence up to itself.
  int queries_per_seq = 1;
  // A shared span starts only with at least this many tokens; shorter ones go on into the spans
  // below them (or their readers' private spans). Sharing t tokens among r rows saves (r − 1)·t
  // token reads and costs a state per row, a state weighing about 2·group tokens (o in fp32,
  // written and read once), so a few tokens are never worth a state: 16 covers GQA groups to 8.
  std::int64_t min_shared_tokens = 16;
  // When max_item_tokens is 0 and this is set, make_plan asks it for max_item_tokens once it has
  // found the whole spans (shared ones, then each row's private one): a backend's cost model
  // (cuda::plan_options) chooses the split without a second plan. It returns 0 or at least the
  // chunk size.
  std::function<std::int64_t(std::span<const SpanSize>)> choose_max_item_tokens = nullptr;
};

enum class ItemKind : std::uint8_t { shared, private_ };

struct WorkItem {
  ItemKind kind = ItemKind::shared;
  std::uint32_t piece_begin = 0;  // pieces [piece_begin, piece_end) of Plan::pieces, in KV order
  std::uint32_t piece_end = 0;
  std::uint32_t row_begin = 0;  // rows [row_begin, row_end) read every token of the item
  std::uint32_t row_end = 0;
  std::uint32_t state_begin = 0;  // the state of row r is state_begin + (r - row_begin)
  std::int64_t tokens = 0;       // KV tokens in the item
  std::int64_t position = 0;     // position of the item's first token in each of its rows' sequences
};

// make_plan's output, which the backends read as it is. They refuse a plan made before the cache
// last changed (tree_version), and one whose arrays were changed by hand so that an index falls out
// of range (rows, states, pieces, merge lists, query tokens); they cannot tell a plan edited within
// range from the right one.
struct Plan {
  std::int32_t chunk_size = 0;
  std::int32_t queries_per_seq = 1;  // query tokens per sequence; state s of query token i is s·queries_per_seq + i
  std::int64_t max_item_tokens = 0;  // the split asked or chosen (0: whole spans); items are cut at it and at kMaxItemTokens
  std::uint64_t tree_version = 0;    // the cache version this plan was made from
  std::vector<SeqId> batch;          // the caller's batch, in the caller's order

  // Row r serves batch entry row_to_batch[r]; batch entry b is row batch_to_row[b].
  std::vector<std::uint32_t> row_to_batch;
  std::vector<std::uint32_t> batch_to_row;

  std::vector<KvPiece> pieces;
  std::vector<WorkItem> items;  // shared items first, then private ones
  std::uint32_t num_shared_items = 0;
  std::uint32_t num_states = 0;

  // Row r merges states merge_states[merge_begin[r] .. merge_begin[r+1]), in KV order.
  std::vector<std::uint32_t> merge_begin;
  std::vector<std::uint32_t> merge_states;

  std::uint32_t num_rows() const { return static_cast<std::uint32_t>(row_to_batch.size()); }
  std::span<const KvPiece> item_pieces(const WorkItem& item) const {
    return std::span<const KvPiece>(pieces).subspan(item.piece_begin, item.piece_end - item.piece_begin);
  }
  bool is_current(const PrefixCache& cache, std::span<const SeqId> batch) const;
};

Plan make_plan(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options = {});
// The same into `into` (replaced whole; unchanged if the call is refused), reusing its memory: a
// decode loop that plans into one Plan every step allocates nothing once it has grown.
void make_plan(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options, Plan& into);

// Keeps the last plan and rebuilds it only when the tree or the batch changed.
class Planner {
 public:
  explicit Planner(const PlanOptions& options = {}) : options_(options) {}
  const Plan& plan(const PrefixCache& cache, std::span<const SeqId> batch);
  std::uint64_t builds() const { return builds_; }

 private:
  PlanOptions options_;
  Plan plan_;
  bool valid_ = false;
  std::uint64_t builds_ = 0;
};

}  // namespace chunktree
