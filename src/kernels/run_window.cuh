// The wgmma producer's view of an item's KV runs, a stage at a time (experiment 79): lane l of each
// producer warp holds the record of run begin + l of a window of 32 runs (one coalesced load), so
// that every lane finds its own run's part of a stage at once. With token-major pages of 16 tokens
// a stage of 128 positions is 8 runs; walked one run at a time, each run change was a chain of
// dependent instructions (its record's shuffles, its addresses, its copies) that the consumers
// waited for (docs/KERNEL_NOTES.md, session 42). Every producer warp holds the same window, so
// that their choices (which parts go by cp.async) agree.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/partial_states.cuh"

namespace chunktree::kernels {

template <typename Element>
class RunWindow {
 public:
  static constexpr int kRuns = 32;  // a warp's lanes

  __device__ RunWindow(const PartialArgs& args, const WorkTile& tile)
      : runs_(args.runs), end_(tile.item.run_end), origin_(tile.first_run.position), kv_head_(static_cast<int>(tile.kv_head)) {
    load(tile.item.run_begin);
  }

  // This lane's run, as item positions [begin(), end()); both INT_MAX past the item's last run.
  __device__ int begin() const { return begin_; }
  __device__ int end() const { return end_position_; }
  // Where the window's last run ends (INT_MAX where it holds the item's last run).
  __device__ int window_end() const { return __shfl_sync(kAll, end_position_, kRuns - 1); }
  // The window of the next 32 runs.
  __device__ void next() { load(first_ + kRuns); }

  __device__ std::int64_t stride() const { return stride_; }
  // Bytes from the K (V) base to this lane's run's row of item position `position`.
  __device__ std::uint64_t k_from(int position) const { return k_from_ + row_bytes(position); }
  __device__ std::uint64_t v_from(int position) const { return v_from_ + row_bytes(position); }

 private:
  static constexpr unsigned kAll = 0xffffffffu;
  __device__ void load(std::uint32_t first) {
    first_ = first;
    const std::uint32_t run = first + threadIdx.x % kRuns;
    const work::KvRun record = run < end_ ? runs_[run] : work::KvRun{};
    const auto head_bytes = static_cast<std::uint64_t>(kv_head_ * record.head_stride) * sizeof(Element);
    k_from_ = record.k_offset + head_bytes;
    v_from_ = record.v_offset + head_bytes;
    stride_ = record.token_stride;
    begin_ = run < end_ ? record.position - origin_ : INT_MAX;
    end_position_ = run < end_ ? begin_ + record.tokens : INT_MAX;
  }
  __device__ std::uint64_t row_bytes(int position) const {
    return static_cast<std::uint64_t>((position - begin_) * stride_) * sizeof(Element);
  }

  const work::KvRun* runs_;
  std::uint32_t end_;
  std::int32_t origin_;  // the item's first position
  int kv_head_;
  std::uint32_t first_ = 0;  // the run whose record lane 0 holds
  // This lane's run: its kv head's first row, the elements from one row to the next, its positions.
  std::uint64_t k_from_ = 0;
  std::uint64_t v_from_ = 0;
  std::int64_t stride_ = 0;
  int begin_ = INT_MAX;
  int end_position_ = INT_MAX;
};

}  // namespace chunktree::kernels
