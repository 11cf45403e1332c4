// Each row's merge list (CSR) from items that give row r of [row_begin, row_end) the state
// state_begin + (r − row_begin), with row_begin < row_end ≤ rows: states in item order. Shared by
// the planner and the levels API.
#pragma once

#include <cstdint>
#include <vector>

namespace chunktree::work {

template <typename Items>
void build_merge_lists(const Items& items, std::uint32_t rows, std::vector<std::uint32_t>& merge_begin,
                       std::vector<std::uint32_t>& merge_states) {
  // Row r's count of items, kept as differences in merge_begin[r + 1] (+1 where an item's rows
  // begin, −1 past their end, in a last place dropped below): two updates per item, however many
  // rows it has. Unsigned wrap-around is fine, the running sums are never negative.
  merge_begin.assign(rows + 2, 0);
  for (const auto& item : items) {
    merge_begin[item.row_begin + 1] += 1;
    merge_begin[item.row_end + 1] -= 1;
  }
  merge_begin.pop_back();
  // merge_begin[r + 1] becomes where row r's list begins: the cursor the fill below advances, to
  // where row r + 1's begins.
  std::uint32_t count = 0;
  std::uint32_t begin = 0;
  for (std::uint32_t r = 0; r < rows; ++r) {
    count += merge_begin[r + 1];
    merge_begin[r + 1] = begin;
    begin += count;
  }
  merge_states.resize(begin);
  std::uint32_t* const cursor = merge_begin.data() + 1;  // row r's
  std::uint32_t* const states = merge_states.data();
  for (const auto& item : items) {
    if (item.row_end - item.row_begin == 1) {  // most items of a decode batch (a row's private span): no loop to set up
      states[cursor[item.row_begin]++] = item.state_begin;
      continue;
    }
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) states[cursor[r]++] = item.state_begin + (r - item.row_begin);
  }
}

}  // namespace chunktree::work
