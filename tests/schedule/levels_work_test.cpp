// The levels front end's work (src/schedule/levels.cpp): the whole spans the cost model reads, and
// items cut at the split asked and never past kMaxItemTokens.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "schedule/work.hpp"
#include "support/expect_error.hpp"

namespace chunktree {
namespace {

// Contiguous KV of `tokens` tokens at address 0: only its length and addresses matter here.
KvSegment segment_of(std::int64_t tokens) {
  KvSegment segment;
  segment.length = tokens;
  return segment;
}

TEST(LevelsWork, NoItemHoldsMoreThanTheCapAndTheSpansStayWhole) {
  Levels levels;
  levels.levels.push_back({SharedSegment{segment_of(kMaxItemTokens + 100), 0, 3}});
  levels.own = {segment_of(kMaxItemTokens + 1), segment_of(1), segment_of(1)};
  const work::LevelsShape shape{3, 1, 1, 64, DType::bf16};

  std::vector<SpanSize> spans;
  work::level_spans(levels, spans);
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].rows, 3);
  EXPECT_EQ(spans[0].tokens, kMaxItemTokens + 100);
  EXPECT_EQ(spans[1].tokens, kMaxItemTokens + 1);

  for (const std::int64_t asked : {std::int64_t{0}, 2 * kMaxItemTokens, std::int64_t{1000}}) {
    SCOPED_TRACE(::testing::Message() << "items of " << asked);
    const work::Work w = work::from_levels(levels, shape, asked);
    const std::int64_t limit = asked == 1000 ? 1000 : kMaxItemTokens;
    std::int64_t tokens = 0;
    for (const work::Item& item : w.items) {
      EXPECT_LE(item.tokens, limit);
      tokens += item.tokens * (item.row_end - item.row_begin);
      std::int64_t run_tokens = 0;
      for (std::uint32_t r = item.run_begin; r < item.run_end; ++r) run_tokens += w.runs[r].tokens;
      EXPECT_EQ(run_tokens, item.tokens);
    }
    EXPECT_EQ(tokens, 3 * (kMaxItemTokens + 100) + kMaxItemTokens + 1 + 2);
    if (asked != 1000) {
      ASSERT_EQ(w.items.size(), 6u);  // the shared segment in two, sequence 0's own KV in two, two single tokens
      EXPECT_EQ(w.items[1].tokens, 100);
      EXPECT_EQ(w.runs[w.items[1].run_begin].position, kMaxItemTokens);
      EXPECT_EQ(w.items[3].tokens, 1);
    }
  }
}

// State indices are 32-bit: 2^20 sequences reading one 2^16-token segment in items of 16 tokens
// (2^32 states) are refused, never wrapped around (it wrote past the merge lists).
TEST(LevelsWork, WorkOfMoreThan32BitStatesIsRefused) {
  constexpr std::int64_t kSequences = std::int64_t{1} << 20;
  Levels levels;
  levels.levels.push_back({SharedSegment{segment_of(std::int64_t{1} << 16), 0, kSequences}});
  const work::LevelsShape shape{kSequences, 1, 1, 64, DType::bf16};
  testing::expect_error([&] { work::from_levels(levels, shape, 16); }, ErrorCode::invalid_argument,
                        "levels: the plan needs more than 2^32 − 1 partial states");
}

}  // namespace
}  // namespace chunktree
