#include "chunktree/state.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace chunktree {
namespace {

// Merges states (o of one element, lse) in the given order; returns (o, lse).
std::pair<float, float> merge(const std::vector<std::pair<float, float>>& states) {
  StateMerger merger;
  float accumulated = 0.0f;
  for (const auto& [o, lse] : states) {
    const StateMerger::Weights weights = merger.add(lse);
    accumulated = accumulated * weights.previous + o * weights.part;
  }
  return {accumulated * merger.inverse_weight(), merger.merged_lse()};
}

TEST(StateMerger, EmptyStatesMergeWithoutNaN) {
  const auto [o, lse] = merge({{0.0f, -INFINITY}, {0.0f, -INFINITY}});
  EXPECT_EQ(o, 0.0f);
  EXPECT_EQ(lse, -INFINITY);
  const auto [o2, lse2] = merge({{0.0f, -INFINITY}, {2.5f, 1.0f}, {0.0f, -INFINITY}});
  EXPECT_FLOAT_EQ(o2, 2.5f);
  EXPECT_FLOAT_EQ(lse2, 1.0f);
}

// A NaN state (from NaN scores) poisons the merge in any position; empty states after it do not
// hide it, and it is never taken for the empty state.
TEST(StateMerger, NanStatesPropagate) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const auto& states : {std::vector<std::pair<float, float>>{{nan, nan}, {2.5f, 1.0f}},
                             std::vector<std::pair<float, float>>{{2.5f, 1.0f}, {nan, nan}},
                             std::vector<std::pair<float, float>>{{0.0f, -INFINITY}, {nan, nan}, {0.0f, -INFINITY}},
                             std::vector<std::pair<float, float>>{{2.5f, 1.0f}, {1.0f, nan}, {3.0f, 50.0f}}}) {
    const auto [o, lse] = merge(states);
    EXPECT_TRUE(std::isnan(o));
    EXPECT_TRUE(std::isnan(lse));
  }
}

TEST(StateMerger, MatchesTheWholeSoftmax) {
  // Scores s_i with values v_i, split into parts: the merge equals the softmax over all.
  const std::vector<float> scores{0.5f, -3.0f, 40.0f, 39.0f, -100.0f, 2.0f};
  const std::vector<float> values{1.0f, 2.0f, 3.0f, -4.0f, 5.0f, 6.0f};
  auto part = [&](std::size_t begin, std::size_t end) {
    double max = -INFINITY;
    for (std::size_t i = begin; i < end; ++i) max = std::max<double>(max, scores[i]);
    double sum = 0.0;
    double weighted = 0.0;
    for (std::size_t i = begin; i < end; ++i) {
      sum += std::exp(scores[i] - max);
      weighted += std::exp(scores[i] - max) * values[i];
    }
    return std::pair<float, float>{static_cast<float>(weighted / sum), static_cast<float>(max + std::log(sum))};
  };
  const auto whole = part(0, 6);
  for (const auto& order : {std::vector<std::pair<float, float>>{part(0, 2), part(2, 3), part(3, 6)},
                            std::vector<std::pair<float, float>>{part(3, 6), part(0, 2), part(2, 3)}}) {
    const auto [o, lse] = merge(order);
    EXPECT_NEAR(o, whole.first, 1e-5);
    EXPECT_NEAR(lse, whole.second, 1e-5);
  }
}

}  // namespace
}  // namespace chunktree
