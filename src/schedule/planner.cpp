#include <algorithm>
#include <compare>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>

#include "chunktree/plan.hpp"
#include "schedule/merge_lists.hpp"

namespace chunktree {
namespace {

// A tree node as the batch sees it: the rows [row_begin, row_end) that read it (see group_rows for
// the nodes that get none).
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
  // The shared spans its rows read down to here: the shared items of a row whose deepest group this
  // is, unless items are cut.
  std::uint32_t spans_read = 0;
};

using NodeRun = PrefixCache::ReadGuard::NodeRun;

// A shared span, read by rows [row_begin, row_end): tokens [position, position + tokens) of their
// sequences.
struct Span {
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::int64_t position = 0;
  std::int64_t tokens = 0;
};

// Groups in pre-order, from the rows' paths in depth-first order, that is sorted lexicographically
// (path(r): row r's nodes, the root's child first), written at the front of `groups` (room for one
// per path node: each group is a distinct path prefix). Unless `single_rows` is set, a node read by
// one row only gets no group: such a node is read privately whenever min_shared_rows is at least 2,
// and a decode batch's rows each end in nodes of their own, so most groups would be these. A node
// gets its group when the next row turns out to read it too. last_group[r] is the deepest group on
// row r's path (-1 when none); the nodes below it, if any, are row r's alone. Returns how many
// groups, or nothing as soon as a row's path sorts before the previous one.
template <typename PathOf>
std::optional<std::size_t> group_rows(std::uint32_t rows, PathOf path, bool single_rows, std::span<Group> groups,
                                      std::span<std::int32_t> last_group) {
  std::size_t count = 0;
  std::int32_t open = -1;  // the deepest group containing the current row; its parents contain it too
  std::span<const std::int32_t> previous;
  std::size_t ungrouped = 0;  // the previous row's nodes from this depth on have no group yet
  for (std::uint32_t r = 0; r <= rows; ++r) {
    const std::span<const std::int32_t> current = r < rows ? path(r) : std::span<const std::int32_t>();
    const std::size_t shorter = std::min(previous.size(), current.size());
    std::size_t common = 0;
    while (common < shorter && previous[common] == current[common]) ++common;
    if (r < rows && common < previous.size() && (common == current.size() || current[common] < previous[common])) return std::nullopt;
    for (std::size_t depth = ungrouped; depth < common; ++depth) {  // the previous row's nodes that this row reads too
      groups[count] = Group{.node = previous[depth], .parent = open, .depth = static_cast<std::uint32_t>(depth), .row_begin = r - 1};
      open = static_cast<std::int32_t>(count++);
    }
    if (r > 0) last_group[r - 1] = open;
    for (; open >= 0 && groups[static_cast<std::size_t>(open)].depth >= common; open = groups[static_cast<std::size_t>(open)].parent) {
      groups[static_cast<std::size_t>(open)].row_end = r;
    }
    ungrouped = common;
    if (single_rows) {
      for (; ungrouped < current.size(); ++ungrouped) {
        groups[count] = Group{.node = current[ungrouped], .parent = open, .depth = static_cast<std::uint32_t>(ungrouped), .row_begin = r};
        open = static_cast<std::int32_t>(count++);
      }
    }
    previous = current;
  }
  return count;
}

// A batch entry as the rows are sorted: its first two path nodes (head), and its index.
struct SortKey {
  std::uint64_t head = 0;
  std::uint32_t entry = 0;
};

// What make_plan keeps between calls on one thread, so that planning a decode step allocates
// nothing once it has grown: every row's path in one array, the groups (never shrunk, so that they
// are not filled again every time), the shared spans, and the nodes each item's pieces come from.
struct PlanScratch {
  std::vector<std::int64_t> lengths;      // of batch entry b's sequence
  std::vector<std::int32_t> path_nodes;   // batch entry b's path: path_nodes[path_begin[b], path_begin[b + 1])
  std::vector<std::uint32_t> path_begin;
  std::vector<Group> groups;
  std::vector<std::int32_t> last_group;
  std::vector<Span> spans;
  std::vector<NodeRun> item_nodes;  // whole item i reads path_nodes[item_nodes[i].begin, .end)
  std::vector<std::uint32_t> piece_ends;
  std::vector<SpanSize> span_sizes;
  std::vector<SortKey> sort_keys;
  std::vector<WorkItem> whole_items;  // a plan's items before they are cut at item_limit
};

// Cuts whole-span items at piece boundaries into `items` of at most max_item_tokens tokens (a
// piece is at most a chunk, so none is cut), numbering their states; returns how many states.
std::uint32_t cut_items(std::span<const WorkItem> whole, std::span<const KvPiece> pieces, std::int64_t max_item_tokens, std::vector<WorkItem>& items) {
  items.clear();
  std::uint32_t states = 0;
  for (const WorkItem& span : whole) {
    std::int64_t position = span.position;
    std::uint32_t next = span.piece_begin;
    while (next < span.piece_end) {
      WorkItem& item = items.emplace_back(span);
      item.position = position;
      item.piece_begin = next;
      const std::int64_t rest = span.position + span.tokens - position;
      if (rest <= max_item_tokens) {  // the rest is one item: no need to count its pieces
        item.tokens = rest;
        next = span.piece_end;
      } else {
        item.tokens = 0;
        do {
          item.tokens += pieces[next].size();
          ++next;
        } while (next < span.piece_end && item.tokens + pieces[next].size() <= max_item_tokens);
      }
      item.piece_end = next;
      position += item.tokens;
      item.state_begin = states;
      states = work::add_states(states, span.row_end - span.row_begin, "make_plan");
    }
  }
  return states;
}

}  // namespace

Plan make_plan(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options) {
  Plan plan;
  make_plan(cache, batch, options, plan);
  return plan;
}

namespace {

// Marks a thread inside make_plan: its per-thread scratch and plan are half-built while the split
// policy runs, so a policy that planned again on the same thread would build over them.
class PlanningOnThisThread {
 public:
  PlanningOnThisThread() {
    if (active_) {
      throw Error(ErrorCode::invalid_argument,
                  "make_plan: called from inside a choose_max_item_tokens policy on the same thread; a policy returns a split "
                  "for the spans it is given and must not plan (plan before or after, or on another thread)");
    }
    active_ = true;
  }
  ~PlanningOnThisThread() { active_ = false; }
  PlanningOnThisThread(const PlanningOnThisThread&) = delete;
  PlanningOnThisThread& operator=(const PlanningOnThisThread&) = delete;

 private:
  static thread_local bool active_;
};
thread_local bool PlanningOnThisThread::active_ = false;

}  // namespace

void make_plan(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options, Plan& into) {
  const PlanningOnThisThread planning;
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
  const std::size_t live = reading.write_paths(batch, scratch.path_nodes, scratch.path_begin, scratch.lengths);
  // Throws for the first live entry with fewer tokens than its queries, if any: the first error a
  // batch gets. Called where another error would come, and after the row pass below, which finds
  // the shortest entry on its way instead of a pass of its own.
  const auto check_query_tokens = [&] {
    for (std::uint32_t b = 0; b < live; ++b) {
      if (scratch.lengths[b] < options.queries_per_seq) {
        throw Error(ErrorCode::invalid_argument, "make_plan: batch entry " + std::to_string(b) + " has " + std::to_string(scratch.lengths[b]) +
                                                     " tokens, fewer than queries_per_seq (" + std::to_string(options.queries_per_seq) +
                                                     "); append the query tokens to the sequence before planning");
      }
    }
  };
  if (live < rows) {
    check_query_tokens();
    reading.length(batch[live]);  // throws the cache's error for the handle that is not live
  }
  if (options.max_item_tokens != 0 && options.max_item_tokens < chunk_size) {
    check_query_tokens();
    throw Error(ErrorCode::invalid_argument, "make_plan: max_item_tokens must be 0 (no split) or at least the chunk size " +
                                                 std::to_string(chunk_size) + ", got " + std::to_string(options.max_item_tokens));
  }

  // Built in a per-thread plan and swapped into `into` at the end: a refused call leaves `into` as it
  // was, and `into`'s old arrays come back here, so that a caller that plans into the same Plan
  // every step reuses their memory (fresh allocations cost page faults: ~30 % of a B = 1024 plan).
  thread_local Plan plan;
  plan.chunk_size = chunk_size;
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
  if (scratch.groups.size() < scratch.path_nodes.size()) scratch.groups.resize(scratch.path_nodes.size());
  scratch.last_group.resize(rows);
  plan.row_to_batch.resize(rows);
  std::iota(plan.row_to_batch.begin(), plan.row_to_batch.end(), 0u);
  const bool single_rows = options.min_shared_rows < 2;  // a node read by one row is read privately, unless
  std::optional<std::size_t> group_count = group_rows(rows, row_path, single_rows, scratch.groups, scratch.last_group);
  if (!group_count) {
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
    group_count = group_rows(rows, row_path, single_rows, scratch.groups, scratch.last_group);
  }
  const std::span<Group> groups = std::span(scratch.groups).first(*group_count);
  const std::span<const std::int32_t> last_group = scratch.last_group;

  // Nodes read by enough rows become shared spans; a child read by exactly the same rows as
  // its parent continues the parent's span. The rest is each row's private span. A span that
  // would start with fewer than min_shared_tokens tokens is deferred: its pieces go on into each
  // child's span (or private span) and into the private span of each row that ends there, so that
  // no state is spent on a few shared tokens (a chain of one-token nodes would otherwise cost a
  // state per node and row: quadratic).
  const auto min_shared_rows = static_cast<std::uint32_t>(options.min_shared_rows);
  const auto read_privately = [&](const Group& group) { return group.row_end - group.row_begin < min_shared_rows; };
  std::vector<Span>& spans = scratch.spans;
  std::vector<NodeRun>& item_nodes = scratch.item_nodes;
  spans.clear();
  item_nodes.clear();
  const auto path_offset = [&](std::uint32_t r) { return scratch.path_begin[plan.row_to_batch[r]]; };  // of row r's path in path_nodes
  for (std::size_t g = 0; g < groups.size(); ++g) {
    Group& group = groups[g];
    const Group* parent = group.parent < 0 ? nullptr : &groups[static_cast<std::size_t>(group.parent)];
    group.spans_read = parent == nullptr ? 0 : parent->spans_read;
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
      item_nodes.back().end = path_offset(group.row_begin) + group.depth + 1;
      spans.back().tokens = group.end - spans.back().position;
      continue;
    }
    const Group& top = groups[static_cast<std::size_t>(group.private_top)];  // the first of the deferred groups above, or this one
    if (group.end - top.position < options.min_shared_tokens) continue;       // deferred
    group.span = static_cast<std::int32_t>(spans.size());
    group.private_top = -1;
    ++group.spans_read;
    spans.push_back(Span{group.row_begin, group.row_end, top.position, group.end - top.position});
    item_nodes.push_back({path_offset(group.row_begin) + top.depth, path_offset(group.row_begin) + group.depth + 1});
  }

  // An item per whole span: the shared spans', then each row's private span (its path from the top
  // of its last run without a span), written in place; their pieces come after. The merge lists of
  // these items are built on the way (cut items get theirs anew below): a row's private state ends
  // its list and is written here, its shared states, one per span on its path, come before it and
  // are filled in after.
  std::vector<WorkItem>& items = plan.items;
  items.resize(spans.size() + rows);  // room for a private span per row
  item_nodes.resize(spans.size() + rows);
  std::uint32_t item_count = 0;
  std::uint32_t states = 0;  // counted here, not in plan.num_states: a member is reloaded after every store to an item
  std::int64_t item_tokens = 0;       // their tokens and path nodes bound their pieces, below
  std::size_t item_path_nodes = 0;
  for (const Span& span : spans) {
    item_tokens += span.tokens;
    item_path_nodes += item_nodes[item_count].end - item_nodes[item_count].begin;
    items[item_count++] = WorkItem{.kind = ItemKind::shared, .row_begin = span.row_begin, .row_end = span.row_end, .state_begin = states,
                                   .tokens = span.tokens, .position = span.position};
    states = work::add_states(states, span.row_end - span.row_begin, "make_plan");
  }
  work::add_states(states, rows, "make_plan");  // the private states' room, below
  plan.batch_to_row.resize(rows);
  plan.merge_begin.resize(rows + 1);
  plan.merge_states.resize(states + rows);  // room for the private states too
  std::uint32_t* const list_end = plan.merge_begin.data();  // row r's, less the shared states not yet filled in
  std::uint32_t* const merge_states = plan.merge_states.data();
  std::uint32_t list_size = 0;  // of the lists so far
  std::int64_t shortest = std::numeric_limits<std::int64_t>::max();  // entry's length
  for (std::uint32_t r = 0; r < rows; ++r) {
    const std::uint32_t entry = plan.row_to_batch[r];
    plan.batch_to_row[entry] = r;
    const std::int64_t length = scratch.lengths[entry];
    shortest = std::min(shortest, length);
    // The row's private span begins below its deepest group's span, or where that group's private
    // span does (at the top of its run without a span); the path's start when no group is above.
    std::uint32_t depth = 0;
    std::int64_t position = 0;
    if (last_group[r] >= 0) {
      const Group& group = groups[static_cast<std::size_t>(last_group[r])];
      list_size += group.spans_read;
      if (group.span >= 0) {
        depth = group.depth + 1;
        position = group.end;
      } else {
        const Group& top = groups[static_cast<std::size_t>(group.private_top)];
        depth = top.depth;
        position = top.position;
      }
    }
    const NodeRun nodes{scratch.path_begin[entry] + depth, scratch.path_begin[entry + 1]};
    list_end[r] = list_size;
    if (nodes.begin == nodes.end) continue;  // the row ends in a span (or has no nodes)
    const std::int64_t tokens = length - position;
    item_tokens += tokens;
    item_path_nodes += nodes.end - nodes.begin;
    item_nodes[item_count] = nodes;
    merge_states[list_size++] = states;
    items[item_count++] = WorkItem{.kind = ItemKind::private_, .row_begin = r, .row_end = r + 1, .state_begin = states++,
                                   .tokens = tokens, .position = position};
  }
  if (shortest < options.queries_per_seq) check_query_tokens();
  items.resize(item_count);
  list_end[rows] = list_size;
  plan.merge_states.resize(list_size);
  work::fill_merge_lists_backwards(std::span(items).first(spans.size()), list_end, merge_states);

  // Pieces, item by item, in one read of the cache, written in place: a node of t tokens takes at
  // most t / chunk_size + 2 pieces.
  plan.pieces.resize(static_cast<std::size_t>(item_tokens / chunk_size) + 2 * item_path_nodes);
  scratch.piece_ends.resize(item_count);
  plan.pieces.resize(reading.write_pieces(scratch.path_nodes, std::span(item_nodes).first(item_count), plan.pieces, scratch.piece_ends));
  std::uint32_t piece_begin = 0;
  for (std::uint32_t i = 0; i < item_count; ++i) {
    items[i].piece_begin = piece_begin;
    piece_begin = items[i].piece_end = scratch.piece_ends[i];
  }
  plan.num_shared_items = static_cast<std::uint32_t>(spans.size());

  // The split: the caller's, or its policy's for these spans.
  std::int64_t max_item_tokens = options.max_item_tokens;
  if (max_item_tokens == 0 && options.choose_max_item_tokens) {
    std::vector<SpanSize>& sizes = scratch.span_sizes;
    sizes.resize(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) sizes[i] = SpanSize{items[i].row_end - items[i].row_begin, items[i].tokens};
    max_item_tokens = options.choose_max_item_tokens(sizes);
    if (max_item_tokens != 0 && max_item_tokens < chunk_size) {
      throw Error(ErrorCode::invalid_argument, "make_plan: the split policy chose max_item_tokens " + std::to_string(max_item_tokens) +
                                                   "; it must be 0 or at least the chunk size " + std::to_string(chunk_size));
    }
  }
  plan.max_item_tokens = max_item_tokens;
  const std::int64_t limit = item_limit(max_item_tokens);
  if (std::any_of(items.begin(), items.end(), [&](const WorkItem& item) { return item.tokens > limit; })) {
    std::swap(items, scratch.whole_items);
    states = cut_items(scratch.whole_items, plan.pieces, limit, items);
    const auto first_private = std::partition_point(items.begin(), items.end(), [](const WorkItem& item) { return item.kind == ItemKind::shared; });
    plan.num_shared_items = static_cast<std::uint32_t>(first_private - items.begin());
    // Each row's states in KV order: shared items come in pre-order (root side first), then private.
    work::build_merge_lists(items, rows, plan.merge_begin, plan.merge_states);
  }
  plan.num_states = states;
  std::swap(plan, into);
}

bool Plan::is_current(const PrefixCache& cache, std::span<const SeqId> batch_now) const {
  return tree_version == cache.version() && std::equal(batch.begin(), batch.end(), batch_now.begin(), batch_now.end());
}

const Plan& Planner::plan(const PrefixCache& cache, std::span<const SeqId> batch) {
  if (!valid_ || !plan_.is_current(cache, batch)) {
    make_plan(cache, batch, options_, plan_);  // into the last plan's memory (unchanged if refused)
    valid_ = true;
    ++builds_;
  }
  return plan_;
}

}  // namespace chunktree
