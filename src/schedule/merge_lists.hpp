// Each row's merge list (CSR) from items that give row r of [row_begin, row_end) the state
// state_begin + (r − row_begin), with row_begin < row_end ≤ rows: states in item order. Shared by
// the planner, the levels API and the paged front end.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "chunktree/types.hpp"

namespace chunktree::work {

// `states` and the `rows` states of one more item. State indices are 32-bit (the merge lists',
// the items' and the kernels'): a plan of more is refused, never wrapped around.
inline std::uint32_t add_states(std::uint32_t states, std::uint32_t rows, const char* who) {
  if (rows > std::numeric_limits<std::uint32_t>::max() - states) {
    throw Error(ErrorCode::invalid_argument, std::string(who) +
                                                 ": the plan needs more than 2^32 − 1 partial states (one per row of each item); plan fewer "
                                                 "sequences at a time, or a larger item split (max_item_tokens)");
  }
  return states + rows;
}

// Fills the lists from their ends: `cursor[r]` holds where row r's unfilled part ends and becomes
// where the list begins once every item not yet filled in is. Backwards, so that a caller that
// knows each row's last state (the planner's private spans) writes it first, at the end, and
// leaves the others here.
template <typename Items>
void fill_merge_lists_backwards(const Items& items, std::uint32_t* cursor, std::uint32_t* states) {
  for (auto item = std::rbegin(items); item != std::rend(items); ++item) {
    if (item->row_end - item->row_begin == 1) {  // most items of a decode batch (a row's private span): no loop to set up
      states[--cursor[item->row_begin]] = item->state_begin;
      continue;
    }
    for (std::uint32_t r = item->row_begin; r < item->row_end; ++r) states[--cursor[r]] = item->state_begin + (r - item->row_begin);
  }
}

template <typename Items>
void build_merge_lists(const Items& items, std::uint32_t rows, std::vector<std::uint32_t>& merge_begin,
                       std::vector<std::uint32_t>& merge_states) {
  // Row r's count of items, kept as differences in merge_begin[r] (+1 where an item's rows begin,
  // −1 past their end): two updates per item, however many rows it has. Unsigned wrap-around is
  // fine, the running sums are never negative.
  merge_begin.assign(rows + 1, 0);
  for (const auto& item : items) {
    merge_begin[item.row_begin] += 1;
    merge_begin[item.row_end] -= 1;
  }
  // merge_begin[r] becomes where row r's list ends: the cursor the fill moves back to where it
  // begins.
  std::uint32_t count = 0;
  std::uint32_t end = 0;
  for (std::uint32_t r = 0; r < rows; ++r) {
    count += merge_begin[r];
    end += count;
    merge_begin[r] = end;
  }
  merge_begin[rows] = end;
  merge_states.resize(end);
  fill_merge_lists_backwards(items, merge_begin.data(), merge_states.data());
}

}  // namespace chunktree::work
