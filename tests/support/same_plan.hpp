// Asserts that two plans are alike in every field (a plan against the reference planner's, or one
// built into reused memory against a fresh one).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "chunktree/plan.hpp"

namespace chunktree::testing {

inline void expect_same_plan(const Plan& actual, const Plan& expected, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(actual.chunk_size, expected.chunk_size);
  EXPECT_EQ(actual.queries_per_seq, expected.queries_per_seq);
  EXPECT_EQ(actual.max_item_tokens, expected.max_item_tokens);
  EXPECT_EQ(actual.tree_version, expected.tree_version);
  EXPECT_EQ(actual.batch, expected.batch);
  EXPECT_EQ(actual.row_to_batch, expected.row_to_batch);
  EXPECT_EQ(actual.batch_to_row, expected.batch_to_row);
  EXPECT_EQ(actual.pieces, expected.pieces);
  ASSERT_EQ(actual.items.size(), expected.items.size());
  for (std::size_t i = 0; i < actual.items.size(); ++i) {
    const WorkItem& a = actual.items[i];
    const WorkItem& e = expected.items[i];
    EXPECT_TRUE(a.kind == e.kind && a.piece_begin == e.piece_begin && a.piece_end == e.piece_end && a.row_begin == e.row_begin &&
                a.row_end == e.row_end && a.state_begin == e.state_begin && a.tokens == e.tokens && a.position == e.position)
        << "item " << i;
  }
  EXPECT_EQ(actual.num_shared_items, expected.num_shared_items);
  EXPECT_EQ(actual.num_states, expected.num_states);
  EXPECT_EQ(actual.merge_begin, expected.merge_begin);
  EXPECT_EQ(actual.merge_states, expected.merge_states);
}

}  // namespace chunktree::testing
