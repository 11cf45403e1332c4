// make_plan against a reference planner written the obvious way, on thousands of random trees and
// batches: every field of the plan must match. The reference recurses over the batch's tree and
// reads the cache only through its public calls (path, length, slots, append_node_pieces), so that
// it shares no code with make_plan; it is slow and meant to be plainly right.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <optional>
#include <string>

#include "chunktree/plan.hpp"
#include "harness/random.hpp"
#include "support/expect_error.hpp"
#include "support/same_plan.hpp"

namespace chunktree {
namespace {

using testing::expect_same_plan;

// A whole span: rows [row_begin, row_end) read tokens [position, position + tokens) of their
// sequences (the same KV for all of them).
struct ReferenceSpan {
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::int64_t position = 0;
  std::int64_t tokens = 0;
};

class ReferencePlanner {
 public:
  ReferencePlanner(const PrefixCache& cache, std::span<const SeqId> batch, const PlanOptions& options)
      : cache_(cache), batch_(batch), options_(options) {
    for (const SeqId seq : batch) {
      paths_.push_back(cache.path(seq));
      lengths_.push_back(cache.length(seq));
    }
    // Rows: the batch sorted by path (a path before every path it is a prefix of), equal paths in
    // batch order.
    rows_.resize(batch.size());
    std::iota(rows_.begin(), rows_.end(), 0u);
    std::stable_sort(rows_.begin(), rows_.end(), [&](std::uint32_t a, std::uint32_t b) { return paths_[a] < paths_[b]; });
    private_start_.resize(rows_.size());
    visit_children(0, static_cast<std::uint32_t>(rows_.size()), 0, Above{});
    for (std::uint32_t r = 0; r < rows_.size(); ++r) {
      if (private_start_[r]) private_spans_.push_back(ReferenceSpan{r, r + 1, *private_start_[r], lengths_[rows_[r]] - *private_start_[r]});
    }
  }

  Plan plan() const {
    Plan plan;
    plan.chunk_size = cache_.config().chunk_size;
    plan.queries_per_seq = options_.queries_per_seq;
    plan.tree_version = cache_.version();
    plan.batch.assign(batch_.begin(), batch_.end());
    plan.row_to_batch = rows_;
    plan.batch_to_row.resize(rows_.size());
    for (std::uint32_t r = 0; r < rows_.size(); ++r) plan.batch_to_row[rows_[r]] = r;
    plan.max_item_tokens = options_.max_item_tokens;
    if (plan.max_item_tokens == 0 && options_.choose_max_item_tokens) plan.max_item_tokens = options_.choose_max_item_tokens(span_sizes());
    for (const ReferenceSpan& span : shared_spans_) add_items(plan, span, ItemKind::shared);
    plan.num_shared_items = static_cast<std::uint32_t>(plan.items.size());
    for (const ReferenceSpan& span : private_spans_) add_items(plan, span, ItemKind::private_);
    std::vector<std::vector<std::uint32_t>> merges(rows_.size());
    for (const WorkItem& item : plan.items) {
      for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) merges[r].push_back(item.state_begin + (r - item.row_begin));
    }
    plan.merge_begin.push_back(0);
    for (const auto& merge : merges) {
      plan.merge_states.insert(plan.merge_states.end(), merge.begin(), merge.end());
      plan.merge_begin.push_back(static_cast<std::uint32_t>(plan.merge_states.size()));
    }
    return plan;
  }

  std::vector<SpanSize> span_sizes() const {
    std::vector<SpanSize> sizes;
    for (const auto* spans : {&shared_spans_, &private_spans_}) {
      for (const ReferenceSpan& span : *spans) sizes.push_back(SpanSize{span.row_end - span.row_begin, span.tokens});
    }
    return sizes;
  }

 private:
  // What a node's children need to know of it and of the nodes above it.
  struct Above {
    bool exists = false;
    bool read_privately = false;      // by fewer than min_shared_rows rows (or below such a node)
    std::optional<std::size_t> span;  // the shared span it feeds
    std::uint32_t row_begin = 0;
    std::uint32_t row_end = 0;
    std::int64_t end = 0;  // position past its last token
    // Where the KV not yet in a shared span begins: the position of the first node of the run of
    // nodes without a span that ends here.
    std::int64_t unshared_from = 0;
  };

  // Rows [row_begin, row_end) share their first `depth` path nodes; visits the nodes at `depth`.
  void visit_children(std::uint32_t row_begin, std::uint32_t row_end, std::size_t depth, const Above& above) {
    std::uint32_t r = row_begin;
    while (r < row_end && path(r).size() == depth) ++r;  // rows that end above: sorted first
    while (r < row_end) {
      const std::int32_t node = path(r)[depth];
      std::uint32_t end = r;
      while (end < row_end && path(end)[depth] == node) ++end;
      visit(node, r, end, depth, above);
      r = end;
    }
  }

  void visit(std::int32_t node, std::uint32_t row_begin, std::uint32_t row_end, std::size_t depth, const Above& above) {
    Above here;
    here.exists = true;
    here.row_begin = row_begin;
    here.row_end = row_end;
    const std::int64_t position = above.exists ? above.end : 0;
    here.end = position + node_tokens(node);
    here.unshared_from = above.exists && !above.span ? above.unshared_from : position;
    here.read_privately = above.read_privately || row_end - row_begin < static_cast<std::uint32_t>(options_.min_shared_rows);
    if (!here.read_privately) {
      if (above.span && above.row_begin == row_begin && above.row_end == row_end) {
        here.span = above.span;  // the same readers: their span goes on
        shared_spans_[*here.span].tokens = here.end - shared_spans_[*here.span].position;
      } else if (here.end - here.unshared_from >= options_.min_shared_tokens) {  // else too short yet: deferred
        here.span = shared_spans_.size();
        shared_spans_.push_back(ReferenceSpan{row_begin, row_end, here.unshared_from, here.end - here.unshared_from});
      }
    }
    // A row that ends here reads privately what no shared span gave it.
    for (std::uint32_t r = row_begin; r < row_end && path(r).size() == depth + 1; ++r) {
      if (!here.span) private_start_[r] = here.unshared_from;
    }
    visit_children(row_begin, row_end, depth + 1, here);
  }

  const std::vector<std::int32_t>& path(std::uint32_t row) const { return paths_[rows_[row]]; }

  std::int64_t node_tokens(std::int32_t node) const {
    std::vector<KvPiece> pieces;
    cache_.append_node_pieces(node, pieces);
    std::int64_t tokens = 0;
    for (const KvPiece& piece : pieces) tokens += piece.size();
    return tokens;
  }

  // Items: the span's slots as pieces (runs of adjacent positions of one chunk), cut greedily into
  // items of at most max_item_tokens tokens (and never more than kMaxItemTokens) at piece boundaries.
  void add_items(Plan& plan, const ReferenceSpan& span, ItemKind kind) const {
    const std::vector<Slot> slots = cache_.slots(batch_[rows_[span.row_begin]]);
    std::vector<KvPiece> pieces;
    for (std::int64_t t = span.position; t < span.position + span.tokens; ++t) {
      const Slot slot = slots[static_cast<std::size_t>(t)];
      if (!pieces.empty() && pieces.back().chunk == slot.chunk && pieces.back().end == slot.offset) {
        pieces.back().end += 1;
      } else {
        pieces.push_back(KvPiece{slot.chunk, slot.offset, slot.offset + 1});
      }
    }
    std::int64_t position = span.position;
    for (std::size_t p = 0; p < pieces.size();) {
      WorkItem item;
      item.kind = kind;
      item.row_begin = span.row_begin;
      item.row_end = span.row_end;
      item.position = position;
      item.piece_begin = static_cast<std::uint32_t>(plan.pieces.size());
      const std::int64_t limit = plan.max_item_tokens == 0 ? kMaxItemTokens : std::min(plan.max_item_tokens, kMaxItemTokens);
      do {
        item.tokens += pieces[p].size();
        plan.pieces.push_back(pieces[p++]);
      } while (p < pieces.size() && item.tokens + pieces[p].size() <= limit);
      item.piece_end = static_cast<std::uint32_t>(plan.pieces.size());
      item.state_begin = plan.num_states;
      plan.num_states += span.row_end - span.row_begin;
      position += item.tokens;
      plan.items.push_back(item);
    }
  }

  const PrefixCache& cache_;
  std::span<const SeqId> batch_;
  const PlanOptions& options_;
  std::vector<std::vector<std::int32_t>> paths_;
  std::vector<std::int64_t> lengths_;
  std::vector<std::uint32_t> rows_;
  std::vector<ReferenceSpan> shared_spans_;  // in pre-order of the nodes that start them
  std::vector<std::optional<std::int64_t>> private_start_;  // of each row's private span, if it has one
  std::vector<ReferenceSpan> private_spans_;                  // in row order
};

// A random tree grown through the cache's calls, with what a batch may hold: the live sequences.
struct RandomTree {
  PrefixCache cache;
  std::vector<SeqId> live;
  std::vector<std::vector<Token>> tokens;

  RandomTree(int chunk_size, harness::Random& random, int operations) : cache(config(chunk_size)) {
    const int vocabulary = static_cast<int>(random.integer(1, 4));  // few tokens: adds often share prefixes by chance
    const auto some_tokens = [&](std::int64_t low, std::int64_t high) {
      std::vector<Token> more(static_cast<std::size_t>(random.integer(low, high)));
      for (Token& token : more) token = static_cast<Token>(random.integer(0, vocabulary - 1));
      return more;
    };
    const auto any_live = [&] { return static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(live.size()) - 1)); };
    for (int op = 0; op < operations; ++op) {
      const double pick = random.uniform();
      if (live.empty() || pick < 0.3) {
        std::vector<Token> sequence;
        if (!live.empty() && random.chance(0.7)) {
          const std::vector<Token>& source = tokens[any_live()];
          sequence.assign(source.begin(), source.begin() + random.integer(0, static_cast<std::int64_t>(source.size())));
        }
        const std::vector<Token> fresh = some_tokens(sequence.empty() ? 1 : 0, 3 * chunk_size);
        sequence.insert(sequence.end(), fresh.begin(), fresh.end());
        live.push_back(cache.add(sequence).seq);
        tokens.push_back(sequence);
      } else if (pick < 0.55) {
        const std::size_t index = any_live();
        const std::vector<Token> more = some_tokens(1, random.chance(0.5) ? 1 : chunk_size + 3);
        cache.append(live[index], more);
        tokens[index].insert(tokens[index].end(), more.begin(), more.end());
      } else if (pick < 0.7) {  // a decode step for some of the sequences
        std::vector<SeqId> step;
        std::vector<Token> step_tokens;
        for (std::size_t i = 0; i < live.size(); ++i) {
          if (!random.chance(0.6)) continue;
          step.push_back(live[i]);
          const Token token = static_cast<Token>(random.integer(0, vocabulary - 1));
          step_tokens.push_back(token);
          tokens[i].push_back(token);
        }
        if (!step.empty()) cache.append_batch(step, step_tokens);
      } else if (pick < 0.88) {
        const std::size_t index = any_live();
        const int n = static_cast<int>(random.chance(0.2) ? random.integer(4, 24) : random.integer(1, 3));
        for (const SeqId child : cache.fork(live[index], n)) {
          live.push_back(child);
          tokens.push_back(tokens[index]);
        }
      } else if (live.size() > 1) {
        const std::size_t index = any_live();
        cache.remove(live[index]);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(index));
        tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(index));
      }
    }
  }

  static CacheConfig config(int chunk_size) {
    CacheConfig config;
    config.num_kv_heads = 1;
    config.head_dim = 64;
    config.chunk_size = chunk_size;
    config.capacity_chunks = 512;  // more than a tree here needs (their pools are cleared for every tree)
    return config;
  }
};

// A batch of live sequences long enough for `queries` query tokens: a random subset, sometimes with
// repeats, in one of the orders an engine might use (as added, depth-first, shuffled).
std::vector<SeqId> random_batch(const RandomTree& tree, harness::Random& random, int queries) {
  std::vector<SeqId> batch;
  const double keep = random.uniform(0.3, 1.0);
  const double repeat = random.chance(0.3) ? 0.1 : 0.0;
  for (std::size_t i = 0; i < tree.live.size(); ++i) {
    if (static_cast<int>(tree.tokens[i].size()) < queries || !random.chance(keep)) continue;
    batch.push_back(tree.live[i]);
    if (random.chance(repeat)) batch.push_back(tree.live[i]);
  }
  const double order = random.uniform();
  if (order < 0.4) {  // depth-first: make_plan keeps such a batch's order
    std::stable_sort(batch.begin(), batch.end(), [&](SeqId a, SeqId b) { return tree.cache.path(a) < tree.cache.path(b); });
  } else if (order < 0.7) {
    for (std::size_t i = batch.size(); i > 1; --i) {
      std::swap(batch[i - 1], batch[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i) - 1))]);
    }
  }
  return batch;
}

PlanOptions random_options(harness::Random& random, int chunk_size) {
  PlanOptions options;
  options.min_shared_rows = static_cast<int>(random.integer(1, 4));
  const std::int64_t min_tokens[] = {0, 1, 16, 16, 40};
  options.min_shared_tokens = min_tokens[random.integer(0, 4)];
  options.queries_per_seq = random.chance(0.7) ? 1 : static_cast<int>(random.integer(2, 3));
  const double split = random.uniform();
  if (split < 0.3) {
    options.max_item_tokens = chunk_size * random.integer(1, 4);
  } else if (split < 0.55) {  // a policy that looks at the spans
    options.choose_max_item_tokens = [chunk_size](std::span<const SpanSize> spans) {
      std::int64_t longest = 0;
      for (const SpanSize& span : spans) longest = std::max(longest, span.tokens);
      return longest > 2 * chunk_size ? std::int64_t{chunk_size} * (1 + static_cast<std::int64_t>(spans.size()) % 3) : 0;
    };
  }
  return options;
}

// 6000 plans: batches of up to ~150 rows, a third of them in depth-first order, a quarter split.
TEST(PlannerReference, RandomTreesAndBatchesGiveTheReferencePlan) {
  harness::Random random(20261202);
  Plan reused;  // planned into every time: what a decode loop does
  for (int tree_index = 0; tree_index < 1000; ++tree_index) {
    const int chunk_size = std::array{16, 32, 64}[static_cast<std::size_t>(random.integer(0, 2))];
    const RandomTree tree(chunk_size, random, static_cast<int>(random.integer(1, 90)));
    for (int batch_index = 0; batch_index < 6; ++batch_index) {
      const PlanOptions options = random_options(random, chunk_size);
      const std::vector<SeqId> batch = random_batch(tree, random, options.queries_per_seq);
      const ReferencePlanner reference(tree.cache, batch, options);
      const Plan expected = reference.plan();
      const std::string where = "tree " + std::to_string(tree_index) + ", batch " + std::to_string(batch_index);
      std::vector<SpanSize> seen;
      PlanOptions watched = options;
      if (options.choose_max_item_tokens) {
        watched.choose_max_item_tokens = [&](std::span<const SpanSize> spans) {
          seen.assign(spans.begin(), spans.end());
          return options.choose_max_item_tokens(spans);
        };
      }
      expect_same_plan(make_plan(tree.cache, batch, watched), expected, where);
      if (options.choose_max_item_tokens) {
        const std::vector<SpanSize> sizes = reference.span_sizes();
        ASSERT_EQ(seen.size(), sizes.size()) << where;
        for (std::size_t s = 0; s < sizes.size(); ++s) {
          EXPECT_TRUE(seen[s].rows == sizes[s].rows && seen[s].tokens == sizes[s].tokens) << where << ", span " << s;
        }
      }
      make_plan(tree.cache, batch, options, reused);
      expect_same_plan(reused, expected, where + ", reused plan");
      if (::testing::Test::HasFailure()) return;  // one case's report is enough
    }
  }

}

// Many sequences forked from one prompt, each decoding on its own (host-bench's case, small).
TEST(PlannerReference, ForkedDecodeGivesTheReferencePlan) {
  for (const int chunk_size : {16, 64}) {
    PrefixCache cache(RandomTree::config(chunk_size));
    std::vector<Token> prompt(300);
    std::iota(prompt.begin(), prompt.end(), 0);
    const std::vector<SeqId> seqs = cache.fork(cache.add(prompt).seq, 40);
    const std::vector<Token> step(seqs.size(), 7);
    for (int t = 0; t < 70; ++t) {
      cache.append_batch(seqs, step);
      for (const PlanOptions& options : {PlanOptions{}, PlanOptions{2, chunk_size}}) {
        expect_same_plan(make_plan(cache, seqs, options), ReferencePlanner(cache, seqs, options).plan(), "step " + std::to_string(t));
      }
    }
  }
}

// Each bad input gets its own error, checked in this order, and a refused call leaves the plan
// it would have replaced as it was.
TEST(PlannerReference, BadInputsAreRefusedWithTheirErrorAndLeaveThePlanAlone) {
  PrefixCache cache(RandomTree::config(16));
  const SeqId a = cache.add(std::vector<Token>{1, 2, 3}).seq;
  const SeqId b = cache.add(std::vector<Token>{1, 2}).seq;
  const SeqId gone = cache.add(std::vector<Token>{4}).seq;
  cache.remove(gone);
  const std::vector<SeqId> batch{a, b};
  Plan plan;
  make_plan(cache, batch, PlanOptions{}, plan);
  const Plan before = plan;
  const auto refused = [&](const std::vector<SeqId>& bad_batch, const PlanOptions& options, ErrorCode code, const std::string& message) {
    testing::expect_error([&] { make_plan(cache, bad_batch, options, plan); }, code, message);
    expect_same_plan(plan, before, message);
  };
  PlanOptions options;
  options.min_shared_rows = 0;
  options.queries_per_seq = 0;
  refused(batch, options, ErrorCode::invalid_argument, "make_plan: min_shared_rows must be at least 1, got 0");
  options = PlanOptions{};
  options.min_shared_tokens = -1;
  options.queries_per_seq = 0;
  refused(batch, options, ErrorCode::invalid_argument, "make_plan: min_shared_tokens must be at least 0, got -1");
  options = PlanOptions{};
  options.queries_per_seq = 0;
  refused(batch, options, ErrorCode::invalid_argument, "make_plan: queries_per_seq must be at least 1, got 0");
  options = PlanOptions{};
  options.queries_per_seq = 3;
  options.max_item_tokens = 5;
  refused({a, b, gone}, options, ErrorCode::invalid_argument,
          "make_plan: batch entry 1 has 2 tokens, fewer than queries_per_seq (3); append the query tokens to the sequence before planning");
  options.queries_per_seq = 1;
  refused({a, gone, b}, options, ErrorCode::unknown_sequence, "");
  refused(batch, options, ErrorCode::invalid_argument, "make_plan: max_item_tokens must be 0 (no split) or at least the chunk size 16, got 5");
  options = PlanOptions{};
  options.choose_max_item_tokens = [](std::span<const SpanSize>) { return std::int64_t{8}; };
  refused(batch, options, ErrorCode::invalid_argument,
          "make_plan: the split policy chose max_item_tokens 8; it must be 0 or at least the chunk size 16");
  make_plan(cache, batch, PlanOptions{}, plan);  // the cache still plans as before
  expect_same_plan(plan, before, "after the refusals");
}

}  // namespace
}  // namespace chunktree
