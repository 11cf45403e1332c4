// Each row's merge list (CSR) from items that give row r of [row_begin, row_end) the state
// state_begin + (r − row_begin): states in item order. Shared by the planner and the levels API.
#pragma once

#include <cstdint>
#include <vector>

namespace chunktree::work {

template <typename Items>
void build_merge_lists(const Items& items, std::uint32_t rows, std::vector<std::uint32_t>& merge_begin,
                       std::vector<std::uint32_t>& merge_states) {
  merge_begin.assign(rows + 1, 0);
  for (const auto& item : items) {
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) merge_begin[r + 1] += 1;
  }
  for (std::uint32_t r = 0; r < rows; ++r) merge_begin[r + 1] += merge_begin[r];
  merge_states.resize(merge_begin[rows]);
  std::vector<std::uint32_t> fill(merge_begin.begin(), merge_begin.end() - 1);
  for (const auto& item : items) {
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) merge_states[fill[r]++] = item.state_begin + (r - item.row_begin);
  }
}

}  // namespace chunktree::work
