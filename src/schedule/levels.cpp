// The levels API's front end: checks a Levels call and turns it into Work.
#include <algorithm>
#include <limits>
#include <string>

#include "schedule/merge_lists.hpp"
#include "schedule/work.hpp"

namespace chunktree::work {
namespace {

struct Checker {
  const char* who;
  [[noreturn]] void fail(const std::string& message) const { throw Error(ErrorCode::invalid_argument, std::string(who) + ": " + message); }
};

// Checks one segment's tensors against the call's dtype, kv heads, head dim and device; `shape_from`
// names the segment the call's dtype and kv heads were taken from, for the messages.
void check_segment(const Checker& checker, const KvSegment& segment, const std::string& what, const LevelsShape& shape,
                   const std::string& shape_from, Device device) {
  if (segment.length < 0) checker.fail(what + " has length " + std::to_string(segment.length) + "; lengths are ≥ 0");
  if (segment.length == 0) {
    if (!segment.pages.empty()) {
      checker.fail(what + " lists " + std::to_string(segment.pages.size()) + " pages for 0 tokens; an empty segment lists none");
    }
    return;
  }
  const bool paged = !segment.pages.empty();
  const std::int64_t tensor_rank = paged ? 4 : 3;
  for (const auto* tensor : {&segment.k, &segment.v}) {
    const std::string name = what + (tensor == &segment.k ? ".k" : ".v");
    if (tensor->data == nullptr) checker.fail(name + " has no data");
    if (tensor->device != device) {
      checker.fail(name + " is in " + std::string(to_string(tensor->device)) + " memory; this backend needs it in " +
                   std::string(to_string(device)) + " memory");
    }
    if (tensor->dtype != shape.dtype) {
      checker.fail(name + " is " + std::string(to_string(tensor->dtype)) + " but the call's KV is " + std::string(to_string(shape.dtype)) +
                   " (as " + shape_from + "'s); all K and V of one call share a dtype");
    }
    const auto& dims = tensor->shape;
    if (static_cast<std::int64_t>(dims.size()) != tensor_rank || dims[dims.size() - 2] != shape.kv_heads ||
        dims.back() != shape.head_dim) {
      checker.fail(name + " has shape " + shape_string(dims) + "; expected " +
                   (paged ? "[num_pages, page_size, " : "[tokens, ") + std::to_string(shape.kv_heads) + ", " +
                   std::to_string(shape.head_dim) + "] (" + (paged ? "a page pool" : "contiguous") + "; kv heads as " + shape_from + "'s)");
    }
  }
  if (segment.k.shape != segment.v.shape) {
    checker.fail(what + ".k has shape " + shape_string(segment.k.shape) + " but .v has " + shape_string(segment.v.shape));
  }
  if (!paged) {
    if (segment.k.shape[0] < segment.length) {
      checker.fail(what + " has length " + std::to_string(segment.length) + " but its k and v hold " + std::to_string(segment.k.shape[0]) +
                   " tokens");
    }
    return;
  }
  const std::int64_t page_size = segment.k.shape[1];
  if (page_size < 1) checker.fail(what + " is paged with pages of " + std::to_string(page_size) + " tokens; pages hold at least one");
  const std::int64_t needed = segment.length / page_size + (segment.length % page_size != 0 ? 1 : 0);  // no length + page_size to wrap
  if (static_cast<std::int64_t>(segment.pages.size()) != needed) {
    checker.fail(what + " lists " + std::to_string(segment.pages.size()) + " pages; " + std::to_string(segment.length) +
                 " tokens in pages of " + std::to_string(page_size) + " need exactly " + std::to_string(needed));
  }
  for (std::size_t i = 0; i < segment.pages.size(); ++i) {
    if (segment.pages[i] < 0 || segment.pages[i] >= segment.k.shape[0]) {
      checker.fail(what + " page " + std::to_string(i) + " is " + std::to_string(segment.pages[i]) + "; the pool has pages 0.." +
                   std::to_string(segment.k.shape[0] - 1));
    }
  }
}

// Appends the runs of tokens [begin, end) of a checked segment; positions start at `position`.
// Consecutive pages become one run, but never one that an earlier item (below `first`) owns.
void append_runs(std::vector<KvRun>& runs, std::size_t first, const KvSegment& segment, const LevelsShape& shape, std::int64_t begin,
                 std::int64_t end, std::int64_t position) {
  const std::int64_t token_elements = static_cast<std::int64_t>(shape.kv_heads) * shape.head_dim;
  const auto element_bytes = static_cast<std::uint64_t>(dtype_size(shape.dtype));
  const auto token_bytes = static_cast<std::uint64_t>(token_elements) * element_bytes;
  const auto k_address = reinterpret_cast<std::uintptr_t>(segment.k.data);
  const auto v_address = reinterpret_cast<std::uintptr_t>(segment.v.data);
  const std::int64_t page_size = segment.pages.empty() ? std::numeric_limits<std::int32_t>::max() : segment.k.shape[1];
  for (std::int64_t t = begin; t < end;) {
    const std::int64_t piece_end = std::min(end, (t / page_size + 1) * page_size);
    const std::int64_t slot = segment.pages.empty() ? t : segment.pages[static_cast<std::size_t>(t / page_size)] * page_size + t % page_size;
    append_run(runs, first, k_address + static_cast<std::uint64_t>(slot) * token_bytes, v_address + static_cast<std::uint64_t>(slot) * token_bytes,
               token_elements, shape.head_dim, static_cast<std::int32_t>(piece_end - t), static_cast<std::int32_t>(position + (t - begin)),
               element_bytes);
    t = piece_end;
  }
}

}  // namespace

LevelsShape check_levels(const Levels& levels, const ConstTensorView& q, const AttentionParams& params, Device device, const char* who) {
  const Checker checker{who};
  if (levels.queries_per_seq < 1) checker.fail("queries_per_seq must be at least 1, got " + std::to_string(levels.queries_per_seq));
  if (q.shape.size() != 3) checker.fail("q has shape " + shape_string(q.shape) + "; expected [num_seqs · queries_per_seq, num_q_heads, head_dim]");
  if (q.device != device) {
    checker.fail("q is in " + std::string(to_string(q.device)) + " memory; this backend needs it in " + std::string(to_string(device)) + " memory");
  }
  if (q.shape[0] < 0 || q.shape[1] < 1 || q.shape[1] > 4096) {
    checker.fail("q has shape " + shape_string(q.shape) + "; it needs a token count of at least 0 and 1..4096 heads");
  }
  // q's data and size before anything is sized by its token count (the coverage below is one entry a sequence).
  expect_tensor(q, std::string(who) + ": q", {DType::f32, DType::f16, DType::bf16}, device, q.shape);
  if (q.shape[0] % levels.queries_per_seq != 0) {
    checker.fail("q has " + std::to_string(q.shape[0]) + " tokens, not a multiple of queries_per_seq (" +
                 std::to_string(levels.queries_per_seq) + ")");
  }
  LevelsShape shape;
  shape.num_seqs = q.shape[0] / levels.queries_per_seq;
  shape.q_heads = static_cast<int>(q.shape[1]);
  if (params.num_q_heads != 0 && params.num_q_heads != shape.q_heads) {
    checker.fail("params.num_q_heads is " + std::to_string(params.num_q_heads) + " but q has " + std::to_string(shape.q_heads) +
                 " heads; pass 0 (q's shape gives them) or " + std::to_string(shape.q_heads));
  }
  if (q.shape[2] != 64 && q.shape[2] != 128 && q.shape[2] != 256) {  // checked before it is narrowed to an int
    checker.fail("head_dim " + std::to_string(q.shape[2]) + " is not 64, 128 or 256");
  }
  shape.head_dim = static_cast<int>(q.shape[2]);

  // The KV's dtype and kv heads come from the first segment with data.
  const KvSegment* first = nullptr;
  std::string shape_from;
  for (std::size_t l = 0; l < levels.levels.size(); ++l) {
    for (std::size_t i = 0; i < levels.levels[l].size(); ++i) {
      if (first == nullptr && levels.levels[l][i].kv.length > 0) {
        first = &levels.levels[l][i].kv;
        shape_from = "level " + std::to_string(l) + " segment " + std::to_string(i);
      }
    }
  }
  for (std::size_t s = 0; s < levels.own.size(); ++s) {
    if (first == nullptr && levels.own[s].length > 0) {
      first = &levels.own[s];
      shape_from = "own[" + std::to_string(s) + "]";
    }
  }
  if (first != nullptr) {
    if (first->k.shape.size() < 2) checker.fail("a segment's k has shape " + shape_string(first->k.shape) + "; expected rank 3 or 4");
    shape.dtype = first->k.dtype;
    if (shape.dtype != DType::f32 && shape.dtype != DType::f16 && shape.dtype != DType::bf16) {
      checker.fail(shape_from + ".k has dtype value " + std::to_string(static_cast<int>(shape.dtype)) + "; expected f32, f16 or bf16");
    }
    const std::int64_t kv_heads = first->k.shape[first->k.shape.size() - 2];
    if (kv_heads < 1 || kv_heads > 4096) {  // checked before it is narrowed to an int
      checker.fail(shape_from + ".k has shape " + shape_string(first->k.shape) + "; expected 1..4096 kv heads");
    }
    shape.kv_heads = static_cast<int>(kv_heads);
  } else if (shape.num_seqs == 0) {  // an empty batch reads nothing: q alone gives the shape
    shape.dtype = q.dtype;
    shape.kv_heads = shape.q_heads;
  } else {
    checker.fail("no KV at all: every segment and every own part is empty");
  }
  if (shape.kv_heads < 1 || shape.q_heads < 1 || shape.q_heads % shape.kv_heads != 0) {
    checker.fail("q has " + std::to_string(shape.q_heads) + " heads, not a positive multiple of the KV's " + std::to_string(shape.kv_heads) +
                 " kv heads");
  }
  if (q.dtype != shape.dtype && !(device == Device::cpu)) {
    checker.fail("q is " + std::string(to_string(q.dtype)) + " but the KV is " + std::string(to_string(shape.dtype)) + "; they must match");
  }

  // The sequences are q's rows over queries_per_seq: a range or an own list past them may be q's fault.
  const auto sequences_of_q = [&] {
    return std::to_string(shape.num_seqs) + " sequences (q's " + std::to_string(q.shape[0]) + " rows at queries_per_seq " +
           std::to_string(levels.queries_per_seq) + ")";
  };
  std::vector<std::int64_t> seen(static_cast<std::size_t>(shape.num_seqs), 0);
  // Checked lengths are ≥ 0; a sum past int64 (of lengths no memory holds) stays at the top, over the limit below.
  const auto add_tokens = [](std::int64_t& total, std::int64_t length) {
    total = total > std::numeric_limits<std::int64_t>::max() - length ? std::numeric_limits<std::int64_t>::max() : total + length;
  };
  for (std::size_t l = 0; l < levels.levels.size(); ++l) {
    for (std::size_t i = 0; i < levels.levels[l].size(); ++i) {
      const SharedSegment& segment = levels.levels[l][i];
      const std::string what = "level " + std::to_string(l) + " segment " + std::to_string(i);
      if (segment.kv.length < 0) checker.fail(what + " has length " + std::to_string(segment.kv.length) + "; lengths are ≥ 0");
      if (segment.kv.length == 0) checker.fail(what + " is empty; leave it out");
      check_segment(checker, segment.kv, what, shape, shape_from, device);
      const auto range = [&] {
        return what + " is read by sequences [" + std::to_string(segment.seq_begin) + ", " + std::to_string(segment.seq_end) + ")";
      };
      if (segment.seq_begin < 0 || segment.seq_begin >= segment.seq_end) {
        checker.fail(range() + "; expected a non-empty range: seq_begin ≥ 0 and below seq_end");
      }
      if (segment.seq_end > shape.num_seqs) {
        checker.fail(range() + "; expected a range within the call's " + sequences_of_q() + "; give q a row per sequence and query token");
      }
      for (std::int64_t s = segment.seq_begin; s < segment.seq_end; ++s) add_tokens(seen[static_cast<std::size_t>(s)], segment.kv.length);
    }
  }
  if (!levels.own.empty() && static_cast<std::int64_t>(levels.own.size()) != shape.num_seqs) {
    checker.fail("own has " + std::to_string(levels.own.size()) + " entries; expected one per sequence of the call's " + sequences_of_q() +
                 ", or none; give q a row per sequence and query token");
  }
  if (levels.own.empty() && levels.queries_per_seq > 1 && shape.num_seqs > 0) {
    checker.fail("with queries_per_seq > 1 every sequence needs its own KV (the query tokens' K and V)");
  }
  for (std::size_t s = 0; s < levels.own.size(); ++s) {
    const KvSegment& own = levels.own[s];
    const std::string what = "own[" + std::to_string(s) + "]";
    check_segment(checker, own, what, shape, shape_from, device);
    if (own.length < levels.queries_per_seq && !(levels.queries_per_seq == 1 && own.length == 0)) {
      checker.fail(what + " has " + std::to_string(own.length) + " tokens, fewer than queries_per_seq (" +
                   std::to_string(levels.queries_per_seq) + "); its last queries_per_seq tokens must be the query tokens' K and V");
    }
    add_tokens(seen[s], own.length);
  }
  std::int64_t longest = 0;
  for (std::size_t s = 0; s < seen.size(); ++s) {
    if (seen[s] == 0) checker.fail("sequence " + std::to_string(s) + " reads no KV: give it a segment or own KV");
    longest = std::max(longest, seen[s]);
  }
  if (longest > std::numeric_limits<std::int32_t>::max()) checker.fail("a sequence reads more than 2^31 − 1 tokens");
  return shape;
}

void level_spans(const Levels& levels, std::vector<SpanSize>& into) {
  into.clear();
  for (const auto& level : levels.levels) {
    for (const SharedSegment& segment : level) {
      if (segment.kv.length > 0) into.push_back(SpanSize{segment.seq_end - segment.seq_begin, segment.kv.length});
    }
  }
  for (const KvSegment& own : levels.own) {
    if (own.length > 0) into.push_back(SpanSize{1, own.length});
  }
}

Work from_levels(const Levels& levels, const LevelsShape& shape, std::int64_t max_item_tokens) {
  Work work;
  work.queries_per_seq = levels.queries_per_seq;
  const auto rows = static_cast<std::uint32_t>(shape.num_seqs);
  work.row_to_batch.resize(rows);
  work.row_limit.resize(rows);
  for (std::uint32_t r = 0; r < rows; ++r) {
    work.row_to_batch[r] = r;
    const std::int64_t own = levels.own.empty() ? 0 : levels.own[r].length;
    work.row_limit[r] = static_cast<std::int32_t>(own - levels.queries_per_seq);
  }
  auto add_items = [&](const KvSegment& segment, std::uint32_t row_begin, std::uint32_t row_end, bool own) {
    const std::int64_t step = item_limit(max_item_tokens);
    for (std::int64_t begin = 0; begin < segment.length; begin += step) {
      const std::int64_t end = std::min(segment.length, begin + step);
      Item item;
      item.run_begin = static_cast<std::uint32_t>(work.runs.size());
      append_runs(work.runs, item.run_begin, segment, shape, begin, end, begin);
      item.run_end = static_cast<std::uint32_t>(work.runs.size());
      item.row_begin = row_begin;
      item.row_end = row_end;
      item.tokens = end - begin;
      item.causal = own && end - 1 > work.row_limit[row_begin] ? 1u : 0u;
      item.state_begin = work.num_states;
      work.num_states = add_states(work.num_states, row_end - row_begin, "levels");
      work.items.push_back(item);
    }
  };
  for (const auto& level : levels.levels) {
    for (const SharedSegment& segment : level) {
      add_items(segment.kv, static_cast<std::uint32_t>(segment.seq_begin), static_cast<std::uint32_t>(segment.seq_end), false);
    }
  }
  for (std::uint32_t r = 0; r < levels.own.size(); ++r) add_items(levels.own[r], r, r + 1, true);

  // Each row's states in item order: levels outermost first, then its own KV.
  build_merge_lists(work.items, rows, work.merge_begin, work.merge_states);
  return work;
}

}  // namespace chunktree::work
