// A work::Work on the device, and the launches that run it: tiles for the two partial-state
// kernels (wgmma tiles of 128 query rows for wide items, mma.sync tiles of 64 for the rest), the
// tables they read, scratch for their states, and each row's merge (src/kernels/merge_rows.cu).
//
// Everything lives in one workspace: a fixed layout of sections sized by a Capacity, staged in one
// host buffer and copied to the device in one transfer on one stream. A later work (the next decode step's
// plan) loads asynchronously into the same workspace while it fits, so that launches a CUDA graph
// captured keep their addresses: such a launch reads its tile and row counts from the workspace
// and has a persistent grid, so it runs whatever work was loaded before the replay. A workspace
// loaded once (one_shot) is captured with its eager launches, which replay that one work.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "chunktree/attention.hpp"
#include "chunktree/types.hpp"
#include "runtime/memory.hpp"
#include "kernels/partial_states.cuh"
#include "schedule/work.hpp"

namespace chunktree::cuda_work {

// Whether `stream` is capturing a CUDA graph (the legacy stream never is).
bool capturing(cudaStream_t stream);

// How many of each table a workspace holds (elements; state_heads: states · queries · q heads).
struct Capacity {
  std::size_t wgmma_tiles = 0;
  std::size_t mma_sync_tiles = 0;
  std::size_t runs = 0;
  std::size_t rows = 0;
  std::size_t merge_states = 0;
  std::size_t state_heads = 0;

  bool holds(const Capacity& need) const;
};

// The counts a captured launch reads: the work loaded last.
struct LiveCounts {
  std::uint32_t wgmma_tiles;
  std::uint32_t mma_sync_tiles;
  std::uint32_t rows;             // that the merge merges: 0 where the states kernels write the output
  std::uint32_t mma_sync_claims;  // kernels::TileClaims: how the mma.sync CTAs find their tiles
  std::uint32_t writes_output;    // 1: every row reads one item, so its state is the output (experiment 69)
  // Where the live plan splits the SMs between the kernels (cost_model::wgmma_sms; experiment 95): how
  // many of each grid's CTAs take tiles; 0: all.
  std::uint32_t wgmma_ctas;
  std::uint32_t mma_sync_ctas;
};

// The K and V storage a call reads: the runs' offsets are bytes from the bases (0 where the runs
// hold addresses), and token_stride the elements from one token's row of a kv head to the next
// token's (0 where the runs address no one layout), which the wgmma producer's TMA maps are made of;
// for an engine's pages also the elements from one page to the next and the tokens a page holds.
struct KvStorage {
  std::uintptr_t k_base = 0;
  std::uintptr_t v_base = 0;
  std::int64_t token_stride = 0;
  std::int64_t page_stride = 0;
  std::int32_t page_tokens = 0;  // 0: not pages
};

// How a load reaches the device.
enum class Upload {
  // Sized exactly; staged in pageable memory and waited for: the work is on the device when
  // load() returns, for any stream (one plan, used once or a few times).
  one_shot,
  // Sized with room to grow; staged in pinned memory and enqueued on the stream: ordered after
  // what ran before on it, before what runs next (a plan per decode step).
  asynchronous,
};

class ForkedStream;

struct DestroyEvent {
  void operator()(cudaEvent_t event) const noexcept;
};

class DeviceWork {
 public:
  DeviceWork(int q_heads, int kv_heads, int head_dim);
  ~DeviceWork();
  DeviceWork(DeviceWork&&) noexcept;
  DeviceWork& operator=(DeviceWork&&) noexcept;

  // Makes w the work that later launches run. If w does not fit the workspace, a new one is
  // allocated, unless a graph captured launches of this one: then it throws capacity_exhausted and
  // nothing changes. A captured graph also fixes the query tokens per row.
  void load(const work::Work& w, Upload upload, cudaStream_t stream);

  // Attention of every row into out (and lse) in the caller's order: the states, then their merge.
  // Enqueued on `stream`; under graph capture, launches that replay whatever work is loaded.
  // buffer_tokens: the query tokens q, out and lse hold (at least the work's); a replayable capture
  // remembers it, and later loads of more are refused (the replays would run past the buffers).
  void attend(const KvStorage& kv, DType dtype, const void* q, float scale, const TensorView& out,
              const TensorView& lse, std::int64_t buffer_tokens, cudaStream_t stream) const;

  // Whether captured launches replay later loads (the last load was asynchronous).
  bool replayable() const { return replayable_; }
  // Whether a graph captured launches of this workspace (which then must outlive it).
  bool captured() const { return captured_; }

  // Every state of every item with its running max, copied to the host (for tests). Synchronous.
  PartialStates states(const KvStorage& kv, DType dtype, const void* q, float scale) const;

 private:
  struct Layout;
  kernels::PartialArgs partial_args(const KvStorage& kv, const void* q, float scale) const;
  bool compute_states(kernels::PartialArgs args, DType dtype, bool replayable, cudaStream_t stream) const;
  void merge(const TensorView& out, const TensorView& lse, bool replayable, bool after_states_kernel, cudaStream_t stream) const;
  const LiveCounts* live_counts() const;
  template <typename T>
  T* section(std::size_t offset) const {
    return reinterpret_cast<T*>(static_cast<std::byte*>(memory_.data()) + offset);
  }

  int q_heads_;
  int group_;
  int head_dim_;
  // The work loaded last.
  int queries_ = 1;
  std::uint32_t rows_ = 0;
  std::uint32_t num_wgmma_tiles_ = 0;
  std::uint32_t num_mma_sync_tiles_ = 0;
  bool mma_sync_round_robin_even_ = true;  // cost_model::round_robin_is_even of its mma.sync tiles
  std::uint32_t wgmma_sms_ = 0;             // cost_model::wgmma_sms of its tiles: 0, or the wgmma tiles' SMs (at most their count)
  bool mma_sync_claims_later_ = false;    // cost_model::claims_later_tiles: an eager call's, beside wgmma tiles
  std::size_t state_heads_ = 0;
  bool one_state_per_row_ = false;
  std::uint32_t longest_row_states_ = 0;  // the most states a row merges
  // The workspace.
  Capacity capacity_;
  std::unique_ptr<Layout> layout_;
  cuda_memory::DeviceAllocation memory_;
  cuda_memory::PinnedAllocation pinned_;  // asynchronous loads' staging
  std::unique_ptr<CUevent_st, DestroyEvent> staged_copied_;  // the last asynchronous copy out of pinned_
  std::vector<kernels::WorkTile> wgmma_tiles_, mma_sync_tiles_;  // host scratch of load()
  std::vector<std::uint32_t> item_order_;                        // host scratch of load()
  std::vector<std::int64_t> item_tile_tokens_;                   // host scratch of load(): each item's sort key
  std::vector<std::int64_t> mma_sync_tile_positions_;            // host scratch of load(): each mma.sync tile's KV positions
  std::vector<std::int32_t> mma_sync_tile_rows_;                 // host scratch of load(): each mma.sync tile's query rows (all its heads)
  std::vector<std::int64_t> wgmma_tile_positions_;               // host scratch of load(): each wgmma tile's KV positions
  bool replayable_ = false;                          // loaded asynchronously, with room: captured launches replay any later load
  mutable bool captured_ = false;                    // a graph captured launches of this workspace
  mutable std::int64_t captured_tokens_ = 0;         // the query tokens the captured buffers hold (replayable captures)
  mutable std::unique_ptr<ForkedStream> side_;       // the mma.sync tiles' stream beside the caller's (experiment 74)
};

}  // namespace chunktree::cuda_work
