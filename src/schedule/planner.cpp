#include <algorithm>
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
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::int32_t span = -1;  // shared span it feeds, -1 when private
  std::int64_t position = 0;  // of the node's first token in its readers' sequences
};

struct SharedSpan {
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::int64_t position = 0;  // of its first token
  std::vector<KvPiece> pieces;
};

// Adds pieces to a span, joining a piece to its predecessor when they are adjacent in one chunk.
void add_pieces(std::vector<KvPiece>& span, const std::vector<KvPiece>& pieces) {
  for (const KvPiece& piece : pieces) {
    if (!span.empty() && span.back().chunk == piece.chunk && span.back().end == piece.begin) {
      span.back().end = piece.end;
    } else {
      span.push_back(piece);
    }
  }
}

// Groups in pre-order, from the rows' paths sorted depth-first (path(r): row r's nodes, the root's
// child first); last_group[r] is the group of row r's last node.
template <typename PathOf>
void group_rows(std::uint32_t rows, PathOf path, std::vector<Group>& groups, std::vector<std::int32_t>& last_group,
                std::vector<std::int32_t>& open) {
  groups.clear();
  last_group.assign(rows, -1);
  open.clear();  // open[d]: the group at depth d containing the current row
  for (std::uint32_t r = 0; r <= rows; ++r) {
    std::size_t common = 0;
    if (r > 0 && r < rows) {
      const std::span<const std::int32_t> previous = path(r - 1);
      const std::span<const std::int32_t> current = path(r);
      while (common < previous.size() && common < current.size() && previous[common] == current[common]) ++common;
    }
    while (open.size() > common) {
      groups[static_cast<std::size_t>(open.back())].row_end = r;
      open.pop_back();
    }
    if (r == rows) break;
    const std::span<const std::int32_t> current = path(r);
    for (std::size_t depth = common; depth < current.size(); ++depth) {
      Group group;
      group.node = current[depth];
      group.parent = open.empty() ? -1 : open.back();
      group.row_begin = r;
      open.push_back(static_cast<std::int32_t>(groups.size()));
      groups.push_back(group);
    }
    if (!open.empty()) last_group[r] = open.back();
  }
}

// What make_plan keeps between calls on one thread, so that planning a decode step allocates
// little beyond the plan it returns: every row's path in one array, and per-row and per-group
// piece lists whose capacity survives.
struct PlanScratch {
  std::vector<std::int32_t> path_nodes;   // batch entry b's path: path_nodes[path_begin[b], path_begin[b + 1])
  std::vector<std::uint32_t> path_begin;
  std::vector<Group> groups;
  std::vector<std::int32_t> last_group;
  std::vector<std::int32_t> open;
  std::vector<std::vector<KvPiece>> private_pieces;  // per row
  std::vector<std::vector<KvPiece>> deferred;        // per group
  std::vector<KvPiece> node_pieces;
  std::vector<SpanSize> span_sizes;
};

// Each of the first `count` lists emptied (capacity kept), and at least `count` of them.
void clear_lists(std::vector<std::vector<KvPiece>>& lists, std::size_t count) {
  if (lists.size() < count) lists.resize(count);
  for (std::size_t i = 0; i < count; ++i) lists[i].clear();
}

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
  for (std::size_t b = 0; b < batch.size(); ++b) {
    if (reading.length(batch[b]) < options.queries_per_seq) {
      throw Error(ErrorCode::invalid_argument, "make_plan: batch entry " + std::to_string(b) + " has " +
                                                   std::to_string(reading.length(batch[b])) + " tokens, fewer than queries_per_seq (" +
                                                   std::to_string(options.queries_per_seq) +
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
  plan.num_states = 0;
  plan.queries_per_seq = options.queries_per_seq;
  plan.tree_version = cache.version();
  plan.batch.assign(batch.begin(), batch.end());

  thread_local PlanScratch scratch;
  const auto rows = static_cast<std::uint32_t>(batch.size());
  scratch.path_nodes.clear();
  scratch.path_begin.assign(1, 0);
  for (std::uint32_t b = 0; b < rows; ++b) {
    reading.append_path(batch[b], scratch.path_nodes);
    scratch.path_begin.push_back(static_cast<std::uint32_t>(scratch.path_nodes.size()));
  }
  const auto batch_path = [&](std::uint32_t b) {
    return std::span<const std::int32_t>(scratch.path_nodes).subspan(scratch.path_begin[b], scratch.path_begin[b + 1] - scratch.path_begin[b]);
  };
  const auto path_less = [&](std::uint32_t a, std::uint32_t b) {
    const std::span<const std::int32_t> x = batch_path(a);
    const std::span<const std::int32_t> y = batch_path(b);
    return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end());
  };

  // Depth-first order: sorting paths lexicographically puts every node's readers together (an
  // engine's batch often is in that order already).
  plan.row_to_batch.resize(rows);
  std::iota(plan.row_to_batch.begin(), plan.row_to_batch.end(), 0u);
  if (!std::is_sorted(plan.row_to_batch.begin(), plan.row_to_batch.end(), path_less)) {
    std::stable_sort(plan.row_to_batch.begin(), plan.row_to_batch.end(), path_less);
  }
  plan.batch_to_row.resize(rows);
  for (std::uint32_t r = 0; r < rows; ++r) plan.batch_to_row[plan.row_to_batch[r]] = r;
  const auto row_path = [&](std::uint32_t r) { return batch_path(plan.row_to_batch[r]); };

  // Nodes read by enough rows become shared spans; a child read by exactly the same rows as
  // its parent continues the parent's span. The rest is each row's private span. A span that
  // would start with fewer than min_shared_tokens tokens is deferred: its pieces go on into each
  // child's span (or private span) and into the private span of each row that ends there, so that
  // no state is spent on a few shared tokens (a chain of one-token nodes would otherwise cost a
  // state per node and row: quadratic).
  std::vector<Group>& groups = scratch.groups;
  std::vector<std::int32_t>& last_group = scratch.last_group;
  group_rows(rows, row_path, groups, last_group, scratch.open);
  std::vector<SharedSpan> spans;
  std::vector<std::vector<KvPiece>>& private_pieces = scratch.private_pieces;
  clear_lists(private_pieces, rows);
  std::vector<std::int64_t> private_position(rows, -1);
  std::vector<std::vector<KvPiece>>& deferred = scratch.deferred;  // pieces a deferred group hands down, its ancestors' first
  clear_lists(deferred, groups.size());
  std::vector<std::int64_t> deferred_position(groups.size(), -1);  // of the first of them; -1: not deferred
  std::vector<KvPiece>& node_pieces = scratch.node_pieces;
  std::vector<std::int64_t> group_end(groups.size(), 0);  // position after each group's node
  for (std::size_t g = 0; g < groups.size(); ++g) {
    Group& group = groups[g];
    node_pieces.clear();
    const auto parent_index = static_cast<std::size_t>(group.parent);
    const bool inherits = group.parent >= 0 && deferred_position[parent_index] >= 0;
    if (inherits) node_pieces = deferred[parent_index];
    reading.append_node_pieces(group.node, node_pieces);
    group.position = group.parent < 0 ? 0 : group_end[parent_index];
    const std::int64_t first_position = inherits ? deferred_position[parent_index] : group.position;
    std::int64_t tokens = 0;
    for (const KvPiece& piece : node_pieces) tokens += piece.size();
    group_end[g] = first_position + tokens;
    const std::uint32_t readers = group.row_end - group.row_begin;
    if (readers >= static_cast<std::uint32_t>(options.min_shared_rows)) {
      const Group* parent = group.parent < 0 ? nullptr : &groups[parent_index];
      if (parent != nullptr && parent->span >= 0 && parent->row_begin == group.row_begin && parent->row_end == group.row_end) {
        group.span = parent->span;
        add_pieces(spans[static_cast<std::size_t>(group.span)].pieces, node_pieces);
      } else if (tokens < options.min_shared_tokens) {
        deferred[g] = node_pieces;
        deferred_position[g] = first_position;
      } else {
        group.span = static_cast<std::int32_t>(spans.size());
        spans.push_back(SharedSpan{group.row_begin, group.row_end, first_position, {}});
        add_pieces(spans.back().pieces, node_pieces);
      }
    } else {
      for (std::uint32_t r = group.row_begin; r < group.row_end; ++r) {
        if (private_position[r] < 0) private_position[r] = first_position;
        add_pieces(private_pieces[r], node_pieces);
      }
    }
  }
  for (std::uint32_t r = 0; r < rows; ++r) {  // rows that end at a deferred group read its pieces privately
    const auto g = static_cast<std::size_t>(last_group[r]);
    if (last_group[r] < 0 || deferred_position[g] < 0) continue;
    private_position[r] = deferred_position[g];
    add_pieces(private_pieces[r], deferred[g]);
  }

  // The split: the caller's, or its policy's for these spans.
  std::int64_t max_item_tokens = options.max_item_tokens;
  if (max_item_tokens == 0 && options.choose_max_item_tokens) {
    std::vector<SpanSize>& sizes = scratch.span_sizes;
    sizes.clear();
    const auto tokens_of = [](const std::vector<KvPiece>& list) {
      std::int64_t tokens = 0;
      for (const KvPiece& piece : list) tokens += piece.size();
      return tokens;
    };
    for (const SharedSpan& span : spans) sizes.push_back(SpanSize{span.row_end - span.row_begin, tokens_of(span.pieces)});
    for (std::uint32_t r = 0; r < rows; ++r) {
      if (!private_pieces[r].empty()) sizes.push_back(SpanSize{1, tokens_of(private_pieces[r])});
    }
    max_item_tokens = options.choose_max_item_tokens(sizes);
    if (max_item_tokens != 0 && max_item_tokens < chunk_size) {
      throw Error(ErrorCode::invalid_argument, "make_plan: the split policy chose max_item_tokens " + std::to_string(max_item_tokens) +
                                                   "; it must be 0 or at least the chunk size " + std::to_string(chunk_size));
    }
  }
  plan.max_item_tokens = max_item_tokens;

  // Items: spans cut into pieces of at most max_item_tokens tokens.
  auto add_items = [&](ItemKind kind, std::uint32_t row_begin, std::uint32_t row_end, std::int64_t position,
                       const std::vector<KvPiece>& pieces) {
    std::size_t i = 0;
    while (i < pieces.size()) {
      WorkItem item;
      item.kind = kind;
      item.row_begin = row_begin;
      item.row_end = row_end;
      item.position = position;
      item.piece_begin = static_cast<std::uint32_t>(plan.pieces.size());
      do {
        item.tokens += pieces[i].size();
        plan.pieces.push_back(pieces[i]);
        ++i;
      } while (i < pieces.size() && (max_item_tokens == 0 || item.tokens + pieces[i].size() <= max_item_tokens));
      item.piece_end = static_cast<std::uint32_t>(plan.pieces.size());
      position += item.tokens;
      item.state_begin = plan.num_states;
      plan.num_states += row_end - row_begin;
      plan.items.push_back(item);
    }
  };
  std::size_t pieces = 0;
  for (const SharedSpan& span : spans) pieces += span.pieces.size();
  for (std::uint32_t r = 0; r < rows; ++r) pieces += private_pieces[r].size();
  plan.pieces.reserve(pieces);
  plan.items.reserve(spans.size() + rows);  // exact without a split, and a start with one
  for (const SharedSpan& span : spans) add_items(ItemKind::shared, span.row_begin, span.row_end, span.position, span.pieces);
  plan.num_shared_items = static_cast<std::uint32_t>(plan.items.size());
  for (std::uint32_t r = 0; r < rows; ++r) add_items(ItemKind::private_, r, r + 1, private_position[r], private_pieces[r]);

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
