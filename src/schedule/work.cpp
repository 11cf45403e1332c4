#include "schedule/work.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "chunktree/attention.hpp"

namespace chunktree::work {

int resolved_q_heads(int num_q_heads, int kv_heads, const char* who) {
  const int q_heads = num_q_heads == 0 ? kv_heads : num_q_heads;
  if (q_heads < 1 || q_heads % kv_heads != 0) {
    throw Error(ErrorCode::invalid_argument, std::string(who) + ": num_q_heads (" + std::to_string(q_heads) +
                                                 ") must be a positive multiple of the cache's kv heads (" + std::to_string(kv_heads) + ")");
  }
  return q_heads;
}

float resolved_scale(float scale, int head_dim, const char* who) {
  const float resolved = scale == 0.0f ? 1.0f / std::sqrt(static_cast<float>(head_dim)) : scale;
  if (const std::string problem = scale_problem("scale", resolved); !problem.empty()) {
    throw Error(ErrorCode::invalid_argument, std::string(who) + ": " + problem);
  }
  return resolved;
}

std::string scale_problem(const char* name, float scale) {
  if (std::isfinite(scale) && std::abs(scale) <= kMaxScale) return {};
  char text[160];
  std::snprintf(text, sizeof text, "%s must be finite and at most %.3g in magnitude (the kernels take %s · log2 e in float32), got %g",
                name, static_cast<double>(kMaxScale), name, static_cast<double>(scale));
  return text;
}

void expect_outputs(const TensorView& out, const TensorView& lse, std::int64_t tokens, int q_heads, int head_dim, Device device,
                    const char* who) {
  expect_tensor(out, "out", {DType::f32, DType::f16, DType::bf16}, device, {tokens, q_heads, head_dim});
  if (lse.data == nullptr) return;
  expect_tensor(lse, "lse", {DType::f32}, device, {tokens, q_heads});
  if (overlap(out, lse)) {
    throw Error(ErrorCode::invalid_argument, std::string(who) + ": lse overlaps out; pass an lse that is memory of its own");
  }
}

bool Work::one_state_per_row() const { return merge_states.size() == num_rows() && longest_row_states() <= 1; }

std::uint32_t Work::longest_row_states() const {
  std::uint32_t longest = 0;
  for (std::uint32_t r = 0; r < num_rows(); ++r) longest = std::max(longest, merge_begin[r + 1] - merge_begin[r]);
  return longest;
}

Work from_plan(const PrefixCache& cache, const Plan& plan) {
  Work work;
  from_plan(cache, plan, work);
  return work;
}

namespace {

// A plan is make_plan's, current for the cache (the backends check its tree version first); what is
// checked here, as the work is built, is that every index in it lies in range, so that a plan whose
// arrays were changed by hand is refused rather than read out of bounds or left with an output
// nobody writes.
[[noreturn, gnu::cold, gnu::noinline]] void refuse_plan(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, "the plan's " + what + ": a Plan must be make_plan's, unchanged; make a new plan");
}

void check_plan_rows(const Plan& plan, std::vector<std::uint32_t>& seen) {
  const std::uint32_t rows = plan.num_rows();
  if (plan.queries_per_seq < 1) refuse_plan("queries_per_seq is " + std::to_string(plan.queries_per_seq));
  if (rows != plan.batch.size()) refuse_plan("row_to_batch has " + std::to_string(rows) + " rows for a batch of " + std::to_string(plan.batch.size()));
  seen.assign(rows, 0);
  for (const std::uint32_t b : plan.row_to_batch) {
    if (b >= rows || seen[b]++ != 0) refuse_plan("row_to_batch is not a permutation of the batch's entries");
  }
  if (plan.merge_begin.size() != rows + std::size_t{1} || plan.merge_begin.front() != 0 || plan.merge_begin.back() != plan.merge_states.size()) {
    refuse_plan("merge_begin does not bound merge_states row by row");
  }
  for (std::uint32_t r = 0; r < rows; ++r) {
    if (plan.merge_begin[r + 1] <= plan.merge_begin[r]) refuse_plan("row " + std::to_string(r) + " merges no state");
  }
  std::uint32_t largest = 0;
  for (const std::uint32_t state : plan.merge_states) largest = std::max(largest, state);
  if (!plan.merge_states.empty() && largest >= plan.num_states) {
    refuse_plan("merge_states holds state " + std::to_string(largest) + " of " + std::to_string(plan.num_states));
  }
}

void check_plan_item(const Plan& plan, const WorkItem& item) {
  if (item.row_begin >= item.row_end || item.row_end > plan.num_rows() ||
      std::uint64_t{item.state_begin} + (item.row_end - item.row_begin) > plan.num_states ||
      item.piece_begin >= item.piece_end || item.piece_end > plan.pieces.size()) {
    refuse_plan("item of rows [" + std::to_string(item.row_begin) + ", " + std::to_string(item.row_end) + ") and pieces [" +
                std::to_string(item.piece_begin) + ", " + std::to_string(item.piece_end) + ") is out of range");
  }
}

[[noreturn, gnu::cold, gnu::noinline]] void refuse_piece(const KvPiece& piece) {
  refuse_plan("piece (chunk " + std::to_string(piece.chunk) + ", " + std::to_string(piece.begin) + ".." + std::to_string(piece.end) +
              ") lies outside the cache's chunks");
}

}  // namespace

void from_plan(const PrefixCache& cache, const Plan& plan, Work& work) {
  const PrefixCache::ReadGuard reading(cache, "work::from_plan");  // one guard for every row's length
  const PoolView pool = cache.pool(0);
  const auto element_bytes = static_cast<std::uint64_t>(dtype_size(pool.dtype));
  check_plan_rows(plan, work.row_to_batch);  // its memory as scratch: it is assigned next
  work.runs.clear();
  work.items.clear();
  work.queries_per_seq = plan.queries_per_seq;
  work.row_to_batch = plan.row_to_batch;
  work.merge_begin = plan.merge_begin;
  work.merge_states = plan.merge_states;
  work.num_states = plan.num_states;
  work.row_limit.resize(plan.num_rows());
  for (std::uint32_t r = 0; r < plan.num_rows(); ++r) {
    const std::int64_t length = reading.length(plan.batch[plan.row_to_batch[r]]);
    if (length < plan.queries_per_seq) {
      refuse_plan("batch entry " + std::to_string(plan.row_to_batch[r]) + " has " + std::to_string(length) + " tokens, fewer than its " +
                  std::to_string(plan.queries_per_seq) + " query tokens");
    }
    work.row_limit[r] = static_cast<std::int32_t>(length - plan.queries_per_seq);
  }
  work.runs.reserve(plan.pieces.size());
  work.items.reserve(plan.items.size());
  const std::int64_t chunks = cache.config().capacity_chunks;
  const std::int32_t chunk_size = cache.config().chunk_size;
  std::uint64_t item_states = 0;
  for (const WorkItem& item : plan.items) {
    check_plan_item(plan, item);
    item_states += item.row_end - item.row_begin;
    Item& converted = work.items.emplace_back();  // filled in place, as the runs are
    converted.run_begin = static_cast<std::uint32_t>(work.runs.size());
    converted.row_begin = item.row_begin;
    converted.row_end = item.row_end;
    converted.state_begin = item.state_begin;
    converted.tokens = item.tokens;
    std::int64_t position = item.position;
    for (const KvPiece& piece : plan.item_pieces(item)) {
      if (piece.chunk < 0 || piece.chunk >= chunks || piece.begin < 0 || piece.begin >= piece.end || piece.end > chunk_size) refuse_piece(piece);
      const auto offset = static_cast<std::uint64_t>(piece.chunk * pool.chunk_stride + piece.begin * pool.position_stride) * element_bytes;
      append_run(work.runs, converted.run_begin, offset, offset, pool.position_stride, pool.head_stride, piece.size(),
                 static_cast<std::int32_t>(position), element_bytes);
      position += piece.size();
    }
    converted.run_end = static_cast<std::uint32_t>(work.runs.size());
    if (position - item.position != item.tokens) {
      refuse_plan("item of " + std::to_string(item.tokens) + " tokens has pieces of " + std::to_string(position - item.position));
    }
  }
  if (item_states != plan.num_states) {  // the states buffers are sized by num_states: more than the items write is refused too
    refuse_plan("num_states is " + std::to_string(plan.num_states) + " where the items hold " + std::to_string(item_states));
  }
  mark_causal_items(work);
}

void append_run(std::vector<KvRun>& runs, std::size_t first, std::uint64_t k_offset, std::uint64_t v_offset, std::int64_t token_stride,
                std::int64_t head_stride, std::int32_t tokens, std::int32_t position, std::uint64_t element_bytes) {
  if (runs.size() > first) {
    KvRun& last = runs.back();
    const auto last_bytes = static_cast<std::uint64_t>(last.tokens * last.token_stride) * element_bytes;
    if (last.k_offset + last_bytes == k_offset && last.v_offset + last_bytes == v_offset && last.token_stride == token_stride &&
        last.head_stride == head_stride && last.position + last.tokens == position) {
      last.tokens += tokens;
      return;
    }
  }
  runs.emplace_back(k_offset, v_offset, token_stride, head_stride, tokens, position);
}

void mark_causal_items(Work& work) {
  for (Item& item : work.items) {
    if (item.run_begin == item.run_end) {
      item.causal = 0;
      continue;
    }
    const KvRun& last_run = work.runs[item.run_end - 1];  // runs hold consecutive positions: it ends the item
    const std::int64_t last = static_cast<std::int64_t>(last_run.position) + last_run.tokens - 1;
    std::int64_t lowest_limit = std::numeric_limits<std::int64_t>::max();
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) lowest_limit = std::min<std::int64_t>(lowest_limit, work.row_limit[r]);
    item.causal = last > lowest_limit ? 1u : 0u;
  }
}

}  // namespace chunktree::work
