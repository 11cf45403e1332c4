#include "chunktree/plan.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>

#include "support/expect_error.hpp"
#include "support/same_plan.hpp"
#include "support/workload.hpp"

namespace chunktree {
namespace {

CacheConfig plan_config(int chunk) {
  CacheConfig config;
  config.num_kv_heads = 1;
  config.head_dim = 64;
  config.chunk_size = chunk;
  config.capacity_chunks = 8192;
  return config;
}

// The invariants every plan must hold, whatever the tree and options.
void expect_valid_plan(const PrefixCache& cache, const Plan& plan, std::span<const SeqId> batch, const PlanOptions& options) {
  const std::uint32_t rows = plan.num_rows();
  ASSERT_EQ(rows, batch.size());
  // The permutation round-trips.
  for (std::uint32_t r = 0; r < rows; ++r) ASSERT_EQ(plan.batch_to_row[plan.row_to_batch[r]], r);

  // States are numbered densely, item by item.
  std::uint32_t next_state = 0;
  for (std::size_t i = 0; i < plan.items.size(); ++i) {
    const WorkItem& item = plan.items[i];
    ASSERT_EQ(item.state_begin, next_state);
    next_state += item.row_end - item.row_begin;
    ASSERT_LT(item.row_begin, item.row_end);
    ASSERT_LT(item.piece_begin, item.piece_end);
    std::int64_t tokens = 0;
    for (const KvPiece& piece : plan.item_pieces(item)) {
      ASSERT_LT(piece.begin, piece.end);
      ASSERT_LE(piece.end, plan.chunk_size);
      tokens += piece.size();
    }
    ASSERT_EQ(tokens, item.tokens);
    if (options.max_item_tokens > 0) ASSERT_LE(item.tokens, options.max_item_tokens);
    ASSERT_LE(item.tokens, kMaxItemTokens);
    const bool shared = i < plan.num_shared_items;
    ASSERT_EQ(item.kind, shared ? ItemKind::shared : ItemKind::private_);
    if (shared) {
      ASSERT_GE(item.row_end - item.row_begin, static_cast<std::uint32_t>(options.min_shared_rows));
    } else {
      ASSERT_EQ(item.row_end - item.row_begin, 1u);
    }
  }
  ASSERT_EQ(next_state, plan.num_states);

  // Which item each state belongs to.
  std::vector<std::uint32_t> state_item(plan.num_states);
  for (std::uint32_t i = 0; i < plan.items.size(); ++i) {
    for (std::uint32_t s = 0; s < plan.items[i].row_end - plan.items[i].row_begin; ++s) state_item[plan.items[i].state_begin + s] = i;
  }
  // Each row's states, in merge order, cover exactly its sequence's KV, in order: every
  // (row, token) pair once. Every state is merged exactly once, by the row it belongs to.
  std::vector<int> merged(plan.num_states, 0);
  ASSERT_EQ(plan.merge_begin.size(), rows + 1u);
  for (std::uint32_t r = 0; r < rows; ++r) {
    std::vector<Slot> covered;
    for (std::uint32_t m = plan.merge_begin[r]; m < plan.merge_begin[r + 1]; ++m) {
      const std::uint32_t state = plan.merge_states[m];
      const WorkItem& item = plan.items[state_item[state]];
      ASSERT_EQ(item.row_begin + (state - item.state_begin), r);
      merged[state] += 1;
      for (const KvPiece& piece : plan.item_pieces(item)) {
        for (std::int32_t p = piece.begin; p < piece.end; ++p) covered.push_back(Slot{piece.chunk, p});
      }
    }
    ASSERT_EQ(covered, cache.slots(batch[plan.row_to_batch[r]])) << "row " << r;
  }
  for (int count : merged) ASSERT_EQ(count, 1);
}

TEST(Planner, SharedPrefixBecomesOneItemForAllRows) {
  PrefixCache cache(plan_config(16));
  std::vector<Token> prompt(50);
  std::iota(prompt.begin(), prompt.end(), 0);
  std::vector<SeqId> batch;
  for (Token last = 0; last < 5; ++last) {
    std::vector<Token> tokens = prompt;
    tokens.push_back(1000 + last);
    batch.push_back(cache.add(tokens).seq);
  }
  const Plan plan = make_plan(cache, batch);
  ASSERT_EQ(plan.num_shared_items, 1u);
  EXPECT_EQ(plan.items[0].tokens, 50);
  EXPECT_EQ(plan.items[0].row_end - plan.items[0].row_begin, 5u);
  EXPECT_EQ(plan.items.size(), 6u);  // + one private item of one token per sequence
  expect_valid_plan(cache, plan, batch, {});
}

TEST(Planner, OutputsKeepTheCallersOrder) {
  PrefixCache cache(plan_config(16));
  const SeqId a = cache.add(std::vector<Token>{1, 2, 3}).seq;
  const SeqId b = cache.add(std::vector<Token>{9, 9}).seq;
  const SeqId c = cache.add(std::vector<Token>{1, 2, 4}).seq;
  const std::vector<SeqId> batch{b, a, c, a};  // a twice: two queries on one sequence
  const Plan plan = make_plan(cache, batch);
  expect_valid_plan(cache, plan, batch, {});
  // a, a and c share [1, 2]; they sit next to each other in depth-first order.
  const std::uint32_t row_a1 = plan.batch_to_row[1];
  const std::uint32_t row_a2 = plan.batch_to_row[3];
  const std::uint32_t row_c = plan.batch_to_row[2];
  EXPECT_EQ(std::max({row_a1, row_a2, row_c}) - std::min({row_a1, row_a2, row_c}), 2u);
}

// Rows are the batch in depth-first order: a batch in that order keeps it, and a sequence that
// ends on another's path comes before it, wherever the batch has it (equal paths keep their order).
TEST(Planner, RowsAreInDepthFirstOrder) {
  PrefixCache cache(plan_config(16));
  const SeqId shorter = cache.add(std::vector<Token>{1, 2, 3}).seq;
  const SeqId longer = cache.add(std::vector<Token>{1, 2, 3, 4, 5}).seq;
  const SeqId other = cache.add(std::vector<Token>{1, 2, 9}).seq;
  const std::vector<std::vector<SeqId>> batches{{shorter, longer, other}, {longer, shorter, other}, {longer, shorter, longer, other}};
  const std::vector<std::vector<std::uint32_t>> rows{{0, 1, 2}, {1, 0, 2}, {1, 0, 2, 3}};
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const Plan plan = make_plan(cache, batches[i]);
    EXPECT_EQ(plan.row_to_batch, rows[i]) << "batch " << i;
    expect_valid_plan(cache, plan, batches[i], {});
  }
}

TEST(Planner, ThresholdAndSplitShapeTheItems) {
  PrefixCache cache(plan_config(16));
  std::vector<Token> prompt(100, 3);
  const SeqId a = cache.add(prompt).seq;
  const SeqId b = cache.fork(a, 1)[0];
  const std::vector<SeqId> batch{a, b};
  PlanOptions options;
  options.min_shared_rows = 3;  // two readers are too few: both read the prompt privately
  const Plan privately = make_plan(cache, batch, options);
  EXPECT_EQ(privately.num_shared_items, 0u);
  EXPECT_EQ(privately.items.size(), 2u);
  expect_valid_plan(cache, privately, batch, options);

  options.min_shared_rows = 2;
  options.max_item_tokens = 32;
  const Plan split = make_plan(cache, batch, options);
  EXPECT_EQ(split.num_shared_items, 4u);  // 100 tokens in items of at most 32
  expect_valid_plan(cache, split, batch, options);

  options.max_item_tokens = 8;
  EXPECT_THROW(make_plan(cache, batch, options), Error);
  options.max_item_tokens = 0;
  options.min_shared_rows = 0;
  EXPECT_THROW(make_plan(cache, batch, options), Error);
}

TEST(Planner, UnknownHandleIsAClearError) {
  PrefixCache cache(plan_config(16));
  const SeqId a = cache.add(std::vector<Token>{1}).seq;
  cache.remove(a);
  const std::vector<SeqId> batch{a};
  try {
    make_plan(cache, batch);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::unknown_sequence);
  }
}

TEST(Planner, RebuildsOnlyWhenTheTreeOrBatchChanges) {
  PrefixCache cache(plan_config(16));
  const SeqId a = cache.add(std::vector<Token>{1, 2}).seq;
  const SeqId b = cache.add(std::vector<Token>{1, 3}).seq;
  Planner planner;
  std::vector<SeqId> batch{a, b};
  planner.plan(cache, batch);
  planner.plan(cache, batch);
  EXPECT_EQ(planner.builds(), 1u);
  cache.append(a, std::vector<Token>{4});
  EXPECT_EQ(planner.plan(cache, batch).items.size(), 2u);  // the one shared token is too few to share: two private items
  EXPECT_EQ(planner.builds(), 2u);
  batch = {b};
  planner.plan(cache, batch);
  EXPECT_EQ(planner.builds(), 3u);
  EXPECT_TRUE(planner.plan(cache, batch).is_current(cache, batch));
}

// Planner rebuilds into its last plan's memory: each rebuild, from a larger plan to a smaller one
// and back, after the tree changed, is the plan make_plan gives fresh.
TEST(Planner, RebuildsAreFreshPlans) {
  testing::Workload workload(plan_config(16));
  harness::Random random(313);
  workload.grow(random, 80, 70, 4);
  ASSERT_GE(workload.seqs.size(), 8u);
  std::vector<SeqId> half;
  for (std::size_t i = 0; i < workload.seqs.size(); i += 2) half.push_back(workload.seqs[i]);
  Planner planner;
  for (int round = 0; round < 3; ++round) {
    for (const std::vector<SeqId>* batch : {&workload.seqs, &half, &workload.seqs}) {
      const Plan& plan = planner.plan(workload.cache, *batch);
      ASSERT_GT(plan.num_shared_items, 0u);
      testing::expect_same_plan(plan, make_plan(workload.cache, *batch), "round " + std::to_string(round));
    }
    workload.append(0, {1, 2, 3});  // a new tree version: the next round rebuilds every plan
  }
  EXPECT_EQ(planner.builds(), 9u);
}

// A span shorter than min_shared_tokens is not shared: its tokens go on into the spans below it,
// and into the private spans of the rows that end there.
TEST(Planner, FewSharedTokensGoOnIntoTheSpansBelow) {
  PrefixCache cache(plan_config(16));
  std::vector<Token> system(10, 7);  // 10 tokens read by all: too few for a state per row
  std::vector<SeqId> batch;
  for (Token branch : {100, 200}) {
    std::vector<Token> tokens = system;
    tokens.insert(tokens.end(), 30, branch);  // 30 tokens read by each half
    for (Token own = 0; own < 3; ++own) {
      std::vector<Token> sequence = tokens;
      sequence.push_back(1000 + branch + own);
      batch.push_back(cache.add(sequence).seq);
    }
  }
  batch.push_back(cache.add(system).seq);  // ends inside the deferred span
  const Plan plan = make_plan(cache, batch);
  expect_valid_plan(cache, plan, batch, {});
  ASSERT_EQ(plan.num_shared_items, 2u);
  for (std::uint32_t i = 0; i < plan.num_shared_items; ++i) {
    EXPECT_EQ(plan.items[i].tokens, 40);  // the 10 common tokens are read once per branch
    EXPECT_EQ(plan.items[i].position, 0);
    EXPECT_EQ(plan.items[i].row_end - plan.items[i].row_begin, 3u);
  }
  PlanOptions every_token;
  every_token.min_shared_tokens = 1;
  const Plan old_shape = make_plan(cache, batch, every_token);
  expect_valid_plan(cache, old_shape, batch, every_token);
  EXPECT_EQ(old_shape.num_shared_items, 3u);
}

// A span's pieces join across its nodes: a child that goes on in its parent's last chunk continues
// the parent's piece, here where a deferred parent's tokens go on into its children's private spans.
TEST(Planner, PiecesJoinAcrossTheNodesOfASpan) {
  PrefixCache cache(plan_config(16));
  const std::vector<Token> system(10, 7);  // too few to share: deferred into each reader's private span
  const SeqId a = cache.add(system).seq;
  std::vector<Token> longer = system;
  longer.insert(longer.end(), 20, 1);
  const SeqId b = cache.add(longer).seq;  // claims the rest of the system prompt's chunk
  longer.assign(system.begin(), system.end());
  longer.insert(longer.end(), 20, 2);
  const SeqId c = cache.add(longer).seq;  // a new chunk
  const std::vector<SeqId> batch{a, b, c};
  const Plan plan = make_plan(cache, batch);
  expect_valid_plan(cache, plan, batch, {});
  ASSERT_EQ(plan.num_shared_items, 0u);
  ASSERT_EQ(plan.items.size(), 3u);
  const std::vector<Slot> slots_b = cache.slots(b);
  const std::span<const KvPiece> pieces_b = plan.item_pieces(plan.items[plan.batch_to_row[1]]);
  ASSERT_EQ(pieces_b.size(), 2u);  // the system prompt's chunk, filled by b, then b's next chunk
  EXPECT_EQ(pieces_b[0], (KvPiece{slots_b[0].chunk, 0, 16}));
  EXPECT_EQ(pieces_b[1], (KvPiece{slots_b[16].chunk, 0, 14}));
  EXPECT_EQ(plan.item_pieces(plan.items[plan.batch_to_row[2]]).size(), 3u);  // 10 tokens, then 16 + 4 in new chunks
  EXPECT_EQ(plan.item_pieces(plan.items[plan.batch_to_row[0]]).size(), 1u);
}

// A chain of one-token nodes with a sequence ending at each: sharing every node would cost a state
// per (node, reader), n² / 2 of them; deferring short spans keeps them near n² / (2 · 16).
TEST(Planner, AChainOfOneTokenNodesStaysSmall) {
  PrefixCache cache(plan_config(16));
  std::vector<Token> tokens;
  std::vector<SeqId> batch;
  const int nodes = 400;
  for (int i = 0; i < nodes; ++i) {
    tokens.push_back(i);
    batch.push_back(cache.add(tokens).seq);
  }
  const Plan plan = make_plan(cache, batch);
  expect_valid_plan(cache, plan, batch, {});
  for (std::uint32_t i = 0; i < plan.num_shared_items; ++i) EXPECT_GE(plan.items[i].tokens, 16);
  EXPECT_LE(plan.num_states, static_cast<std::uint32_t>(nodes * nodes / (2 * 16) + 2 * nodes));
  PlanOptions every_token;
  every_token.min_shared_tokens = 1;
  EXPECT_GE(make_plan(cache, batch, every_token).num_states, static_cast<std::uint32_t>(nodes * nodes / 2));
}

// A split policy sees the whole spans (those of the plan without a split) and its choice cuts
// them exactly as that max_item_tokens would, in the same pass.
TEST(Planner, ASplitPolicyChoosesFromTheWholeSpans) {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    testing::Workload workload(plan_config(16));
    harness::Random random(seed * 313);
    workload.grow(random, 80, 90, 4);
    const std::vector<SeqId>& batch = workload.seqs;
    const Plan whole = make_plan(workload.cache, batch);
    EXPECT_EQ(whole.max_item_tokens, 0);
    for (const std::int64_t choice : {std::int64_t{0}, std::int64_t{16}, std::int64_t{64}}) {
      std::vector<SpanSize> seen;
      PlanOptions options;
      options.choose_max_item_tokens = [&](std::span<const SpanSize> spans) {
        seen.assign(spans.begin(), spans.end());
        return choice;
      };
      const Plan chosen = make_plan(workload.cache, batch, options);
      ASSERT_EQ(seen.size(), whole.items.size());
      for (std::size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].rows, whole.items[i].row_end - whole.items[i].row_begin);
        EXPECT_EQ(seen[i].tokens, whole.items[i].tokens);
      }
      PlanOptions fixed;
      fixed.max_item_tokens = choice;
      const Plan expected = make_plan(workload.cache, batch, fixed);
      EXPECT_EQ(chosen.max_item_tokens, choice);
      ASSERT_EQ(chosen.items.size(), expected.items.size());
      for (std::size_t i = 0; i < chosen.items.size(); ++i) {
        EXPECT_EQ(chosen.items[i].tokens, expected.items[i].tokens);
        EXPECT_EQ(chosen.items[i].row_begin, expected.items[i].row_begin);
        EXPECT_EQ(chosen.items[i].piece_begin, expected.items[i].piece_begin);
      }
      EXPECT_EQ(chosen.merge_states, expected.merge_states);
    }
    PlanOptions bad;
    bad.choose_max_item_tokens = [](std::span<const SpanSize>) { return std::int64_t{8}; };  // below the chunk size
    EXPECT_THROW(make_plan(workload.cache, batch, bad), Error);
  }
}

// Spans longer than kMaxItemTokens become several items whatever the split asks (none, a longer
// one, or a policy's none), and the policy still sees them whole.
TEST(Planner, NoItemHoldsMoreThanTheCap) {
  PrefixCache cache(plan_config(16));
  const std::int64_t shared = kMaxItemTokens + 48;  // whole chunks: b's own tokens start a chunk
  std::vector<Token> prompt(static_cast<std::size_t>(shared), 5);
  const SeqId a = cache.add(prompt).seq;
  const SeqId b = cache.fork(a, 1)[0];
  cache.append(b, std::vector<Token>(static_cast<std::size_t>(kMaxItemTokens + 1), 6));
  const std::vector<SeqId> batch{a, b};
  for (const std::int64_t asked : {std::int64_t{0}, 2 * kMaxItemTokens}) {
    SCOPED_TRACE(::testing::Message() << "max_item_tokens " << asked);
    PlanOptions options;
    options.max_item_tokens = asked;
    const Plan plan = make_plan(cache, batch, options);
    expect_valid_plan(cache, plan, batch, options);
    EXPECT_EQ(plan.max_item_tokens, asked);
    ASSERT_EQ(plan.num_shared_items, 2u);  // the prompt: kMaxItemTokens, then 48
    EXPECT_EQ(plan.items[0].tokens, kMaxItemTokens);
    ASSERT_EQ(plan.items.size(), 4u);  // b's own tokens: kMaxItemTokens, then 1
    EXPECT_EQ(plan.items[3].tokens, 1);
  }
  std::vector<SpanSize> seen;
  PlanOptions by_policy;
  by_policy.choose_max_item_tokens = [&](std::span<const SpanSize> spans) {
    seen.assign(spans.begin(), spans.end());
    return std::int64_t{0};
  };
  const Plan chosen = make_plan(cache, batch, by_policy);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].tokens, shared);
  EXPECT_EQ(seen[1].tokens, kMaxItemTokens + 1);
  EXPECT_EQ(chosen.items.size(), 4u);
  expect_valid_plan(cache, chosen, batch, by_policy);
}

// Planning into one Plan every step gives what a fresh plan gives, and a refused call leaves it as
// it was.
// State indices are 32-bit: 2^20 sequences forked from one 2^16-token sequence, cut into items of
// 16 tokens (2^32 states), are refused, never wrapped around (it wrote past the merge lists).
TEST(Planner, APlanOfMoreThan32BitStatesIsRefused) {
  PrefixCache cache(plan_config(16));
  const SeqId a = cache.add(std::vector<Token>(std::size_t{1} << 16, 5)).seq;
  std::vector<SeqId> batch = cache.fork(a, (1 << 20) - 1);
  batch.push_back(a);
  PlanOptions options;
  options.max_item_tokens = 16;
  testing::expect_error([&] { make_plan(cache, batch, options); }, ErrorCode::invalid_argument,
                        "make_plan: the plan needs more than 2^32 − 1 partial states");
}

TEST(Planner, PlansIntoAReusedPlanAndRefusalsLeaveItAlone) {
  testing::Workload workload(plan_config(16));
  harness::Random random(991);
  workload.grow(random, 60, 80, 4);
  Plan reused;
  for (const PlanOptions& options : {PlanOptions{}, PlanOptions{1, 16}, PlanOptions{3, 48}, PlanOptions{}}) {
    make_plan(workload.cache, workload.seqs, options, reused);
    testing::expect_same_plan(reused, make_plan(workload.cache, workload.seqs, options), "reused plan");
    expect_valid_plan(workload.cache, reused, workload.seqs, options);
  }
  const std::vector<std::uint32_t> before = reused.merge_states;
  PlanOptions bad;  // refused half-way through: the split policy's answer is below the chunk size
  bad.choose_max_item_tokens = [](std::span<const SpanSize>) { return std::int64_t{5}; };
  EXPECT_THROW(make_plan(workload.cache, workload.seqs, bad, reused), Error);
  EXPECT_EQ(reused.merge_states, before);
  expect_valid_plan(workload.cache, reused, workload.seqs, PlanOptions{});
}

// A split policy runs while make_plan's per-thread plan is half-built: planning again from inside it,
// on the same thread, is refused (it once returned the inner call's plan as the outer one's), and the
// outer call's target is left as it was; a policy that plans on another thread is fine.
TEST(Planner, APolicyThatPlansOnItsThreadIsRefused) {
  testing::Workload workload(plan_config(16));
  harness::Random random(17);
  workload.grow(random, 30, 40, 4);
  const std::vector<SeqId> outer{workload.seqs[0], workload.seqs[1]};
  const std::vector<SeqId> inner{workload.seqs[2]};
  Plan kept = make_plan(workload.cache, outer);
  const std::vector<SeqId> before = kept.batch;
  PlanOptions nested;
  nested.choose_max_item_tokens = [&](std::span<const SpanSize>) {
    Plan other;
    make_plan(workload.cache, inner, PlanOptions{}, other);
    return std::int64_t{0};
  };
  testing::expect_error([&] { make_plan(workload.cache, outer, nested, kept); }, ErrorCode::invalid_argument,
                        "make_plan: called from inside a choose_max_item_tokens policy on the same thread");
  EXPECT_EQ(kept.batch, before);
  PlanOptions elsewhere;
  elsewhere.choose_max_item_tokens = [&](std::span<const SpanSize>) {
    Plan other;
    std::thread([&] { make_plan(workload.cache, inner, PlanOptions{}, other); }).join();
    EXPECT_EQ(other.batch, inner);
    return std::int64_t{0};
  };
  make_plan(workload.cache, outer, elsewhere, kept);
  EXPECT_EQ(kept.batch, outer);
  expect_valid_plan(workload.cache, kept, outer, PlanOptions{});
  make_plan(workload.cache, inner, PlanOptions{}, kept);  // the flag is down again after a refusal and a success
  EXPECT_EQ(kept.batch, inner);
}

TEST(Planner, RandomTreesHoldTheInvariants) {
  for (int chunk : {16, 32, 128}) {
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      testing::Workload workload(plan_config(chunk));
      harness::Random random(seed * 977 + static_cast<std::uint64_t>(chunk));
      workload.grow(random, 120, 70, seed % 3 == 0 ? 2 : 20);
      // A random batch: a subset of the live sequences, shuffled, sometimes with repeats.
      std::vector<SeqId> batch;
      for (SeqId seq : workload.seqs) {
        if (random.chance(0.8)) batch.push_back(seq);
        if (random.chance(0.05)) batch.push_back(seq);
      }
      for (std::size_t i = batch.size(); i > 1; --i) std::swap(batch[i - 1], batch[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i) - 1))]);
      for (const PlanOptions options : {PlanOptions{}, PlanOptions{1, chunk}, PlanOptions{4, 3 * chunk}}) {
        const Plan plan = make_plan(workload.cache, batch, options);
        expect_valid_plan(workload.cache, plan, batch, options);
      }
    }
  }
}

}  // namespace
}  // namespace chunktree
