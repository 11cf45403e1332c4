// The wgmma producer's view of an item's KV runs, a stage at a time (experiment 79): lane l of each
// producer warp holds the record of run w + l of a window of 32 runs (one coalesced load), so that
// every lane finds its own run's part of a stage at once. With token-major pages of 16 tokens a
// stage of 128 positions is 8 runs; walked one run at a time, each run change was a chain of
// dependent instructions (its record's shuffles, its addresses, its copies) that the consumers
// waited for (docs/KERNEL_NOTES.md, session 42). Every producer warp holds the same window, so
// that their choices (which parts go by cp.async) agree.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/kv_tensor_maps.cuh"
#include "kernels/partial_states.cuh"
#include "kernels/tile_shapes.hpp"

namespace chunktree::kernels {

template <typename Element, int D>
class RunWindow {
 public:
  static constexpr int kRuns = 32;  // a warp's lanes

  // The item's first run comes with the tile, and the window's load waits until a stage reaches past
  // it (a tile's first copies would otherwise wait an L2 round trip more than the record-at-a-time
  // walk did; on the cache path, whose items are mostly one long run, every stage). Where its rows
  // are the maps' rows of D elements (head-major chunks and pages) its box rows are shifts of the
  // tile record's offsets, which every thread holds alike, so its stages are issued from uniform
  // registers (experiment 79f); otherwise lane 0 holds it like a window's run.
  __device__ RunWindow(const PartialArgs& args, const KvTensorMaps& maps, const WorkTile& tile)
      : runs_(args.runs),
        end_(tile.item.run_end),
        origin_(tile.first_run.position),
        kv_head_(static_cast<int>(tile.kv_head)),
        first_(tile.item.run_begin),
        lead_end_(tile.item.run_begin < tile.item.run_end ? tile.first_run.tokens : 0) {
    const work::KvRun& lead = tile.first_run;
    constexpr std::uint64_t kRowBytes = D * sizeof(Element);
    const std::uint64_t k_from = lead.k_offset + head_bytes(lead);
    const std::uint64_t v_from = lead.v_offset + head_bytes(lead);
    if (maps.enabled && maps.row_elements == D && lead.token_stride == D && (k_from | v_from) % kRowBytes == 0 &&
        max(k_from, v_from) / kRowBytes + lead.tokens < kMapRows - kBoxRows) {
      lead_rows_ = LeadRows{static_cast<std::int32_t>(k_from / kRowBytes), static_cast<std::int32_t>(v_from / kRowBytes)};
    } else {
      hold(maps, lead, threadIdx.x % kRuns == 0);
    }
  }

  // The rows of the item's first run where its stages go from uniform registers (k −1: they go as a
  // window's run).
  struct LeadRows {
    std::int32_t k = -1;  // the maps' rows of item position 0
    std::int32_t v = -1;
  };

  // Calls copy_lead(rows) for a stage of item positions [first, last) inside the item's first run
  // that goes from uniform registers; for any other, copy() once for each window of runs it reaches
  // into, with this lane's run in the window's accessors. Stages come in order.
  template <typename CopyLead, typename Copy>
  __device__ void for_stage(const KvTensorMaps& maps, int first, int last, CopyLead copy_lead, Copy copy) {
    const bool inside_lead = last <= lead_end_;
    if (inside_lead && lead_rows_.k >= 0) {
      copy_lead(lead_rows_);
      return;
    }
    if (!inside_lead) {
      if (lead_end_ >= 0) {  // the first stage past the first run: the window from the item's first run
        lead_end_ = -1;
        load(maps, first_);
      }
      while (window_end() <= first) load(maps, first_ + kRuns);
    }
    // One call of copy() for both a stage inside a first run held as lane 0's and the window's
    // stages: each call inlines the whole part copy, and a second copy of it lay on the lead
    // path's way to the window's (session 46: jumps over code not yet fetched).
    for (;;) {
      copy();
      if (inside_lead || window_end() >= last) return;
      load(maps, first_ + kRuns);
    }
  }

  // The lane whose run is the first of the whole pages, consecutive in the pool, that make up the
  // stage [first, last), or −1: such a stage goes as one 3-D box per 64 columns (experiment 84). A
  // lane's page follows the previous lane's where its rows are exactly a page's rows later in the
  // maps, in K and in V; the first page's rows must lie in its page's block. Every warp finds the same.
  // Columns are not compared: only the paged front end passes page tokens, and its runs of one tile
  // are one kv head's rows of one pool, whose pages lie whole rows apart (so share their column).
  __device__ int stage_pages_lane(const KvTensorMaps& maps, int first, int last) const {
    const int tokens = maps.page_tokens;
    if (tokens == 0 || last - first != kWgmmaStageTokens) return -1;
    const int rows = maps.page_rows.divisor;
    const bool whole = boxed() && end_position_ - begin_ == tokens;
    const std::int32_t k_before = __shfl_up_sync(kAll, boxes_.k.row, 1);
    const std::int32_t v_before = __shfl_up_sync(kAll, boxes_.v.row, 1);
    const bool follows = threadIdx.x % kRuns != 0 && whole && boxes_.k.row == k_before + rows && boxes_.v.row == v_before + rows;
    const unsigned starts = __ballot_sync(kAll, whole && begin_ == first);
    const unsigned following = __ballot_sync(kAll, follows);
    const int pages = maps.stage_pages;
    const int lead = __ffs(starts) - 1;
    if (lead < 0 || lead + pages > kRuns) return -1;
    const unsigned rest = ((1u << (pages - 1)) - 1u) << (lead + 1);  // the lanes of the stage's other pages
    if ((following & rest) != rest) return -1;
    int page = 0, k_row = 0, v_row = 0;
    maps.page_rows.fast_divmod(page, k_row, __shfl_sync(kAll, boxes_.k.row, lead));
    maps.page_rows.fast_divmod(page, v_row, __shfl_sync(kAll, boxes_.v.row, lead));
    return k_row + tokens <= rows && v_row + tokens <= rows ? lead : -1;
  }

  // This lane's run, as item positions [begin(), end()); both INT_MAX past the item's last run.
  __device__ int begin() const { return begin_; }
  __device__ int end() const { return end_position_; }
  __device__ std::int64_t stride() const { return stride_; }
  // Whether this lane's run is read as boxes, and where its boxes start at item position `position`.
  __device__ bool boxed() const { return boxes_.k.row >= 0; }
  __device__ BoxStart k_box(int position) const { return BoxStart{boxes_.k.column, boxes_.k.row + (position - begin_)}; }
  __device__ BoxStart v_box(int position) const { return BoxStart{boxes_.v.column, boxes_.v.row + (position - begin_)}; }
  // Bytes from the K (V) base to this lane's run's row of item position `position`.
  __device__ std::uint64_t k_from(int position) const { return k_from_ + row_bytes(position); }
  __device__ std::uint64_t v_from(int position) const { return v_from_ + row_bytes(position); }

 private:
  static constexpr unsigned kAll = 0xffffffffu;
  // Where the window's last run ends (INT_MAX where it holds the item's last run).
  __device__ int window_end() const { return __shfl_sync(kAll, end_position_, kRuns - 1); }
  __device__ void load(const KvTensorMaps& maps, std::uint32_t first) {
    first_ = first;
    const std::uint32_t run = first + threadIdx.x % kRuns;
    hold(maps, run < end_ ? runs_[run] : work::KvRun{}, run < end_);
  }
  // Takes this lane's run from its record (none: past the item's last run).
  __device__ void hold(const KvTensorMaps& maps, const work::KvRun& record, bool valid) {
    k_from_ = record.k_offset + head_bytes(record);
    v_from_ = record.v_offset + head_bytes(record);
    stride_ = record.token_stride;
    begin_ = valid ? record.position - origin_ : INT_MAX;
    end_position_ = valid ? begin_ + record.tokens : INT_MAX;
    // Once a run, not once a stage: the divisions would cost the producer's chain ~60 instructions
    // a stage (experiment 79c).
    boxes_ = valid ? maps.run_boxes<D * sizeof(Element)>(stride_, k_from_, v_from_, record.tokens) : RunBoxes{{0, -1}, {0, -1}};
  }
  // Bytes from a run's first row to the tile's kv head's part of it.
  __device__ std::uint64_t head_bytes(const work::KvRun& record) const {
    return static_cast<std::uint64_t>(kv_head_ * record.head_stride) * sizeof(Element);
  }
  __device__ std::uint64_t row_bytes(int position) const {
    return static_cast<std::uint64_t>((position - begin_) * stride_) * sizeof(Element);
  }

  const work::KvRun* runs_;
  std::uint32_t end_;
  std::int32_t origin_;  // the item's first position
  int kv_head_;
  std::uint32_t first_;  // the run whose record lane 0 holds
  int lead_end_;         // while only the item's first run is held: where it ends; then −1
  LeadRows lead_rows_;
  // This lane's run: its kv head's first row, the elements from one row to the next, its positions.
  std::uint64_t k_from_ = 0;
  std::uint64_t v_from_ = 0;
  std::int64_t stride_ = 0;
  int begin_ = INT_MAX;
  int end_position_ = INT_MAX;
  RunBoxes boxes_{{0, -1}, {0, -1}};  // where its boxes start (row −1: none)
};

}  // namespace chunktree::kernels
