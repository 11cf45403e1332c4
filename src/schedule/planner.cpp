#include <algorithm>
#include <compare>
#include <numeric>
#include <span>
#include <string>

#include "chunktree/plan.hpp"
#include "schedule/merge_lists.hpp"

namespace chunktree {
namespace {

// A tree node as the batch sees it: the rows [row_begin, row_end) that read it.
struct Group {
  std::int32_t node = 0;
  std::int32_t parent = -1;  // enclosing group, -1 at the top
  std::uint32_t depth = 0;   // the node's index in its readers' paths
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::int32_t span = -1;  // shared span it feeds, -1 when private or deferred
  // Without a span: the first group of the run of groups without a span that ends here, where the
  // private span of a reader that goes no further than this run begins (-1 for a group with a span).
  std::int32_t private_top = -1;
  // Positions of the node's first token and past its last in its readers' sequences, set where
  // they are needed: position where the parent is read by at least min_shared_rows rows, end where
  // the group is (below those, nodes are read privately and only the row's length matters).
  std::int64_t position = 0;
  std::int64_t end = 0;
};

// A whole span, read by rows [row_begin, row_end): the KV of their paths' nodes at depths
// [depth_begin, depth_end), which are pieces [piece_begin, piece_end) of the plan.
struct Span {
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::uint32_t depth_begin = 0;
  std::uint32_t depth_end = 0;
  std::int64_t position = 0;  // of its first token
  std::int64_t tokens = 0;
  std::uint32_t piece_begin = 0;
  std::uint32_t piece_end = 0;
};

// Groups in pre-order, from the rows' paths in depth-first order, that is sorted lexicographically
// (path(r): row r's nodes, the root's child first); last_group[r] is the group of row r's last node.
// Returns false, with the groups unfinished, as soon as a row's path sorts before the previous one.
template <typename PathOf>
bool group_rows(std::uint32_t rows, PathOf path, std::vector<Group>& groups, std::vector<std::int32_t>& last_group) {
  groups.clear();
  last_group.resize(rows);
  std::int32_t open = -1;  // the deepest group containing the current row; its parents contain it too
  std::span<const std::int32_t> previous;
  for (std::uint32_t r = 0; r <= rows; ++r) {
    const std::span<const std::int32_t> current = r < rows ? path(r) : std::span<const std::int32_t>();
    std::size_t common = 0;
    while (common < previous.size() && common < current.size() && previous[common] == current[common]) ++common;
    if (r < rows && common < previous.size() && (common == current.size() || current[common] < previous[common])) return false;
    for (; open >= 0 && groups[static_cast<std::size_t>(open)].depth >= common; open = groups[static_cast<std::size_t>(open)].parent) {
      groups[static_cast<std::size_t>(open)].row_end = r;
    }
    for (std::size_t depth = common; depth < current.size(); ++depth) {
      Group& group = groups.emplace_back();  // filled in place: copying a struct just written stalls on its stores
      group.node = current[depth];
      group.parent = open;
      group.depth = static_cast<std::uint32_t>(depth);
      group.row_begin = r;
      open = static_cast<std::int32_t>(groups.size() - 1);
    }
    if (r < rows) last_group[r] = open;
    previous = current;
  }
  return true;
}

// A batch entry as the rows are sorted: its first two path nodes (head), and its index.
struct SortKey {
  std::uint64_t head = 0;
  std::uint32_t entry = 0;
};

// What make_plan keeps between calls on one thread, so that planning a decode step allocates
// little beyond the plan it returns: every row's path in one array, the groups and the spans.
struct PlanScratch {
  std::vector<std::int64_t> lengths;      // of batch entry b's sequence
  std::vector<std::int32_t> path_nodes;   // batch entry b's path: path_nodes[path_begin[b], path_begin[b + 1])
  std::vector<std::uint32_t> path_begin;
  std::vector<Group> groups;
  std::vector<std::int32_t> last_group;
  std::vector<Span> spans;
  std::vector<SpanSize> span_sizes;
  std::vector<SortKey> sort_keys;
};

}  // namespace

Plan make_plan(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options) {
  Plan plan;
  make_plan(cache, batch, options, plan);
  return plan;
}

void make_plan(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options, Plan& into) {
  const PrefixCache::ReadGuard reading(cache, "make_plan");  // the tree must not change while it is read
  const std::int32_t chunk_size = cache.config().chunk_size;
  if (options.min_shared_rows < 1) {
    throw Error(ErrorCode::invalid_argument,
                "make_plan: min_shared_rows must be at least 1, got " + std::to_string(options.min_shared_rows));
  }
  if (options.min_shared_tokens < 0) {
    throw Error(ErrorCode::invalid_argument,
                "make_plan: min_shared_tokens must be at least 0, got " + std::to_string(options.min_shared_tokens));
  }
  if (options.queries_per_seq < 1) {
    throw Error(ErrorCode::invalid_argument,
                "make_plan: queries_per_seq must be at least 1, got " + std::to_string(options.queries_per_seq));
  }
  thread_local PlanScratch scratch;
  const auto rows = static_cast<std::uint32_t>(batch.size());
  scratch.lengths.resize(rows);
  scratch.path_nodes.clear();
  scratch.path_begin.resize(rows + 1);
  scratch.path_begin[0] = 0;
  for (std::uint32_t b = 0; b < rows; ++b) {
    scratch.lengths[b] = reading.append_path(batch[b], scratch.path_nodes);
    scratch.path_begin[b + 1] = static_cast<std::uint32_t>(scratch.path_nodes.size());
    if (scratch.lengths[b] < options.queries_per_seq) {
      throw Error(ErrorCode::invalid_argument, "make_plan: batch entry " + std::to_string(b) + " has " + std::to_string(scratch.lengths[b]) +
                                                   " tokens, fewer than queries_per_seq (" + std::to_string(options.queries_per_seq) +
                                                   "); append the query tokens to the sequence before planning");
    }
  }
  if (options.max_item_tokens != 0 && options.max_item_tokens < chunk_size) {
    throw Error(ErrorCode::invalid_argument, "make_plan: max_item_tokens must be 0 (no split) or at least the chunk size " +
                                                 std::to_string(chunk_size) + ", got " + std::to_string(options.max_item_tokens));
  }

  // Built in a per-thread plan and swapped into `into` at the end: a refused call leaves `into` as it
  // was, and `into`'s old arrays come back here, so that a caller that plans into the same Plan
  // every step reuses their memory (fresh allocations cost page faults: ~30 % of a B = 1024 plan).
  thread_local Plan plan;
  plan.chunk_size = chunk_size;
  plan.pieces.clear();
  plan.items.clear();
  plan.num_shared_items = 0;
  plan.queries_per_seq = options.queries_per_seq;
  plan.tree_version = cache.version();
  plan.batch.assign(batch.begin(), batch.end());

  // Rows in depth-first order: sorting the paths lexicographically puts every node's readers
  // together. An engine's batch often is in that order already; grouping it as it comes finds out,
  // and only a batch that is not is sorted and grouped again.
  const auto batch_path = [&](std::uint32_t b) {
    return std::span<const std::int32_t>(scratch.path_nodes).subspan(scratch.path_begin[b], scratch.path_begin[b + 1] - scratch.path_begin[b]);
  };
  const auto row_path = [&](std::uint32_t r) { return batch_path(plan.row_to_batch[r]); };
  std::vector<Group>& groups = scratch.groups;
  std::vector<std::int32_t>& last_group = scratch.last_group;
  plan.row_to_batch.resize(rows);
  std::iota(plan.row_to_batch.begin(), plan.row_to_batch.end(), 0u);
  if (!group_rows(rows, row_path, groups, last_group)) {
    // Sorted by each entry's first two path nodes in one integer, which decides most comparisons
    // without reading the paths (0 where a path is shorter: it sorts first, as a prefix does, since
    // nodes below the root are never 0), then by the rest of the path, then by entry: stable.
    std::vector<SortKey>& keys = scratch.sort_keys;
    keys.resize(rows);
    for (std::uint32_t b = 0; b < rows; ++b) {
      const std::span<const std::int32_t> path = batch_path(b);
      const auto node_at = [&](std::size_t depth) { return depth < path.size() ? static_cast<std::uint32_t>(path[depth]) : 0u; };
      keys[b] = SortKey{std::uint64_t{node_at(0)} << 32 | node_at(1), b};
    }
    std::sort(keys.begin(), keys.end(), [&](const SortKey& x, const SortKey& y) {
      if (x.head != y.head) return x.head < y.head;
      const std::span<const std::int32_t> a = batch_path(x.entry);
      const std::span<const std::int32_t> b = batch_path(y.entry);
      const auto order = std::lexicographical_compare_three_way(a.begin() + std::min<std::size_t>(2, a.size()), a.end(),
                                                                b.begin() + std::min<std::size_t>(2, b.size()), b.end());
      return order != 0 ? order < 0 : x.entry < y.entry;
    });
    for (std::uint32_t r = 0; r < rows; ++r) plan.row_to_batch[r] = keys[r].entry;
    group_rows(rows, row_path, groups, last_group);
  }
  plan.batch_to_row.resize(rows);
  for (std::uint32_t r = 0; r < rows; ++r) plan.batch_to_row[plan.row_to_batch[r]] = r;

  // Nodes read by enough rows become shared spans; a child read by exactly the same rows as
  // its parent continues the parent's span. The rest is each row's private span. A span that
  // would start with fewer than min_shared_tokens tokens is deferred: its pieces go on into each
  // child's span (or private span) and into the private span of each row that ends there, so that
  // no state is spent on a few shared tokens (a chain of one-token nodes would otherwise cost a
  // state per node and row: quadratic).
  const auto min_shared_rows = static_cast<std::uint32_t>(options.min_shared_rows);
  const auto read_privately = [&](const Group& group) { return group.row_end - group.row_begin < min_shared_rows; };
  std::vector<Span>& spans = scratch.spans;
  spans.clear();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    Group& group = groups[g];
    const Group* parent = group.parent < 0 ? nullptr : &groups[static_cast<std::size_t>(group.parent)];
    if (parent != nullptr && read_privately(*parent)) {  // so is every node below a private one
      group.private_top = parent->private_top;
      continue;
    }
    group.position = parent == nullptr ? 0 : parent->end;
    group.private_top = parent != nullptr && parent->span < 0 ? parent->private_top : static_cast<std::int32_t>(g);
    if (read_privately(group)) continue;
    group.end = group.position + reading.node_tokens(group.node);
    if (parent != nullptr && parent->span >= 0 && parent->row_begin == group.row_begin && parent->row_end == group.row_end) {
      group.span = parent->span;  // the last span: the parent's only child is the next group
      group.private_top = -1;
      spans.back().depth_end = group.depth + 1;
      spans.back().tokens = group.end - spans.back().position;
      continue;
    }
    const Group& top = groups[static_cast<std::size_t>(group.private_top)];  // the first of the deferred groups above, or this one
    if (group.end - top.position < options.min_shared_tokens) continue;       // deferred
    group.span = static_cast<std::int32_t>(spans.size());
    group.private_top = -1;
    spans.push_back(Span{group.row_begin, group.row_end, top.depth, group.depth + 1, top.position, group.end - top.position});
  }
  const std::size_t shared_spans = spans.size();

  // Pieces: the shared spans', then each row's private span (its path from the top of its last run
  // without a span), found and written row by row. Room for them all at once, so that a new plan's
  // pieces grow once: a node of t tokens takes at most t / chunk_size + 2 pieces, and the spans'
  // tokens are the rows' tokens less what sharing saves.
  std::int64_t span_tokens = std::accumulate(scratch.lengths.begin(), scratch.lengths.end(), std::int64_t{0});
  for (const Span& span : spans) span_tokens -= span.tokens * (span.row_end - span.row_begin - 1);
  plan.pieces.reserve(static_cast<std::size_t>(span_tokens / chunk_size) + 2 * scratch.path_nodes.size());
  const auto write_pieces = [&](Span& span) {
    span.piece_begin = static_cast<std::uint32_t>(plan.pieces.size());
    reading.append_pieces(row_path(span.row_begin).subspan(span.depth_begin, span.depth_end - span.depth_begin), plan.pieces);
    span.piece_end = static_cast<std::uint32_t>(plan.pieces.size());
  };
  for (Span& span : spans) write_pieces(span);
  for (std::uint32_t r = 0; r < rows; ++r) {
    if (last_group[r] < 0) continue;
    const std::int32_t top = groups[static_cast<std::size_t>(last_group[r])].private_top;
    if (top < 0) continue;
    const Group& top_group = groups[static_cast<std::size_t>(top)];
    Span& span = spans.emplace_back();  // filled in place, as the groups are
    span.row_begin = r;
    span.row_end = r + 1;
    span.depth_begin = top_group.depth;
    span.depth_end = static_cast<std::uint32_t>(row_path(r).size());
    span.position = top_group.position;
    span.tokens = scratch.lengths[plan.row_to_batch[r]] - span.position;
    write_pieces(span);
  }

  // The split: the caller's, or its policy's for these spans.
  std::int64_t max_item_tokens = options.max_item_tokens;
  if (max_item_tokens == 0 && options.choose_max_item_tokens) {
    std::vector<SpanSize>& sizes = scratch.span_sizes;
    sizes.clear();
    for (const Span& span : spans) sizes.push_back(SpanSize{span.row_end - span.row_begin, span.tokens});
    max_item_tokens = options.choose_max_item_tokens(sizes);
    if (max_item_tokens != 0 && max_item_tokens < chunk_size) {
      throw Error(ErrorCode::invalid_argument, "make_plan: the split policy chose max_item_tokens " + std::to_string(max_item_tokens) +
                                                   "; it must be 0 or at least the chunk size " + std::to_string(chunk_size));
    }
  }
  plan.max_item_tokens = max_item_tokens;

  // Items: spans cut at piece boundaries into items of at most max_item_tokens tokens.
  std::uint32_t states = 0;  // counted here, not in plan.num_states: a member is reloaded after every store to an item
  const auto add_items = [&](ItemKind kind, const Span& span) {
    std::int64_t position = span.position;
    std::uint32_t next = span.piece_begin;
    while (next < span.piece_end) {
      WorkItem& item = plan.items.emplace_back();  // filled in place: a copy of a finished item stalls on its fresh stores
      item.kind = kind;
      item.row_begin = span.row_begin;
      item.row_end = span.row_end;
      item.position = position;
      item.piece_begin = next;
      const std::int64_t rest = span.position + span.tokens - position;
      if (max_item_tokens == 0 || rest <= max_item_tokens) {  // the rest is one item: no need to count its pieces
        item.tokens = rest;
        next = span.piece_end;
      } else {
        do {
          item.tokens += plan.pieces[next].size();
          ++next;
        } while (next < span.piece_end && item.tokens + plan.pieces[next].size() <= max_item_tokens);
      }
      item.piece_end = next;
      position += item.tokens;
      item.state_begin = states;
      states += span.row_end - span.row_begin;
    }
  };
  plan.items.reserve(spans.size());  // exact without a split, and a start with one
  for (std::size_t s = 0; s < shared_spans; ++s) add_items(ItemKind::shared, spans[s]);
  plan.num_shared_items = static_cast<std::uint32_t>(plan.items.size());
  for (std::size_t s = shared_spans; s < spans.size(); ++s) add_items(ItemKind::private_, spans[s]);
  plan.num_states = states;

  // Each row's states in KV order: shared items come in pre-order (root side first), then private.
  work::build_merge_lists(plan.items, rows, plan.merge_begin, plan.merge_states);
  std::swap(plan, into);
}

bool Plan::is_current(const PrefixCache& cache, std::span<const SeqId> batch_now) const {
  return tree_version == cache.version() && std::equal(batch.begin(), batch.end(), batch_now.begin(), batch_now.end());
}

const Plan& Planner::plan(const PrefixCache& cache, std::span<const SeqId> batch) {
  if (!valid_ || !plan_.is_current(cache, batch)) {
    plan_ = make_plan(cache, batch, options_);
    valid_ = true;
    ++builds_;
  }
  return plan_;
}

}  // namespace chunktree
