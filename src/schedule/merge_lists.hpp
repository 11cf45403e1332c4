// Each row's merge list (CSR) from items that give row r of [row_begin, row_end) the state
// state_begin + (r − row_begin), with row_begin < row_end ≤ rows: states in item order. Shared by
// the planner and the levels API.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace chunktree::work {

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
