// What the two partial-state kernels share: the work description uploaded by DevicePlan, where a
// query row comes from and goes to (QueryRow), the cp.async row copy, the online softmax's running
// state, the store of a finished row's state and the first tile's start order.
//
// Work tile = (item, kv head(s), first query row). Query rows are the item's rows × query tokens ×
// the GQA group: query row m is row item.row_begin + m / (queries · group), query token
// (m / group) % queries, q head kv_head · group + m % group (src/schedule/work.hpp has the rest).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "chunktree/numeric.hpp"
#include "kernels/launch_setup.cuh"
#include "kernels/tile_shapes.hpp"
#include "schedule/work.hpp"

#include <cute/arch/copy_sm80.hpp>
#include <cutlass/arch/barrier.h>

namespace chunktree::kernels {

// A tile carries copies of its item and of the item's first KV run, so that a tile's start waits for
// one load (this record) before its first K/V copy instead of a chain of three (tile → item → run),
// each a cold HBM miss (docs/KERNEL_NOTES.md, experiment 19). It also carries its item's first row's
// batch index and causal limit (all of a decode tile's rows are that row's), so that the tile's Q
// rows and targets are known from the record alone: a lookup in the row tables behind a CTA's
// streaming stages waited ~3 µs (experiment 91).
struct WorkTile {
  work::Item item;
  work::KvRun first_run;  // the item's run_begin (zeros for an item without runs)
  std::uint16_t kv_head;
  std::uint16_t kv_head_count;  // kv heads kv_head, kv_head + 1, ...: more than one in a packed mma.sync tile (tile_shapes.hpp)
  std::uint32_t m_begin;  // first query row of the item in this tile (of each of its kv heads)
  std::uint32_t first_row_batch;  // row_to_batch[item.row_begin] (0 for an item without rows)
  std::int32_t first_row_limit;   // row_limit[item.row_begin] (0 for an item without rows)
  std::uint64_t padding = 0;      // the record is copied in 16-byte pieces
};

// The mma.sync CTAs' counters for claiming tiles at run time. For a replayed launch's first tiles
// (experiment 67): each CTA's rank among the CTAs of its SM, the tickets of the low slots (the first
// CTA on an SM) and of the high ones (the others), and the CTAs that have claimed. For the tiles
// after the first ones (experiment 96): the tickets taken, and the CTAs whose last ticket found no
// tile. Zero before each launch: the workspace zeroes them once, and the last CTA to claim a first
// tile zeroes those of the first tiles (`claimed` wraps to zero by itself), the last to end those of
// the later ones.
struct SlotClaims {
  static constexpr std::uint32_t kSms = 256;  // SM ids past this claim high slots
  std::uint32_t on_sm[kSms];
  std::uint32_t low;
  std::uint32_t high;
  std::uint32_t claimed;
  std::uint32_t later;
  std::uint32_t ended;
};

// How the mma.sync CTAs find their tiles (bits; 0: tile blockIdx.x, then every working_ctas-th).
enum TileClaims : std::uint32_t {
  kClaimFirstTiles = 1,  // each CTA claims its first tile (a replayed launch's; experiment 67)
  kClaimLaterTiles = 2,  // each CTA claims every tile (beside the wgmma tiles; experiments 96 and 100), after a slot-claimed first one
};

struct PartialArgs {
  const WorkTile* tiles;
  // The tiles to run: num_tiles, or (a launch that a CUDA graph replays for later schedules) the
  // count in the workspace at live_num_tiles, which the grid was sized for at most num_tiles of.
  std::uint32_t num_tiles;
  const std::uint32_t* live_num_tiles;
  SlotClaims* slot_claims;  // the mma.sync kernel's counters, where it claims tiles
  // TileClaims bits: an eager launch's, or (non-null) a replayed launch's, the live plan's.
  std::uint32_t claims;
  const std::uint32_t* live_claims;
  // A replayed launch's: how many of its CTAs take tiles where the live plan splits the SMs between
  // the two kernels (0: all; cost_model::wgmma_sms); the others exit at once.
  const std::uint32_t* live_ctas;
  // Nonzero where an eager call launches the mma.sync kernel chained to the wgmma kernel on one stream
  // instead of beside it on a second (experiment 104; only where the mma.sync CTAs claim their tiles
  // and every wgmma CTA fits at once): the wgmma CTAs let it start as they start, so that they hold
  // their SMs before its persistent grid fills every SM, and its CTA that ends last waits for the wgmma
  // kernel, so that the merge chained to it reads every state.
  std::uint32_t mma_sync_chained;
  const work::KvRun* runs;
  const std::uint32_t* row_to_batch;
  const std::int32_t* row_limit;
  const void* q;  // [rows · queries, q_heads, D]
  std::uintptr_t k_base;  // runs' offsets are bytes from these
  std::uintptr_t v_base;
  // Elements from one token's row of a kv head to the next token's in the storage at the bases (the
  // wgmma producer's TMA rows); 0 where the runs address memory of no one layout (the levels API).
  std::int64_t token_stride;
  // Where the storage is an engine's pages: elements from a page's first row to the next page's, and
  // tokens per page (0: not pages), of which the wgmma producer's 3-D TMA maps are made.
  std::int64_t page_stride;
  std::int32_t page_tokens;
  float* state_o;    // [states · queries, q_heads, D]
  float* state_lse;  // [states · queries, q_heads]
  float* state_max;  // [states · queries, q_heads] or null
  // Non-null when every row may read exactly one item: its state is the output, stored in the
  // caller's order as out [rows · queries, q_heads, D] in out_dtype (and lse, if not null), with no
  // merge. An eager launch passes it only for such a plan; a replayed launch passes it always, and
  // the live plan's answer at live_writes_output (the workspace's LiveCounts).
  void* out;
  const std::uint32_t* live_writes_output;
  float* out_lse;
  DType out_dtype;
  int q_heads;
  int group;
  int queries;       // query tokens per row
  float scale_log2;  // softmax scale · log2(e): scores live in the log2 domain
};

// Whether finished rows go to the output (one state a row) or to the states that the merge reads.
__device__ inline bool writes_output(const PartialArgs& args) {
  return args.out != nullptr && (args.live_writes_output == nullptr || *args.live_writes_output != 0);
}

__device__ inline std::uint32_t tile_count(const PartialArgs& args) {
  return args.live_num_tiles == nullptr ? args.num_tiles : min(*args.live_num_tiles, args.num_tiles);
}

__device__ inline std::uint32_t tile_claims(const PartialArgs& args) { return args.live_claims == nullptr ? args.claims : *args.live_claims; }

// The CTAs that take tiles, each its first and then every working_ctas()-th or those it claims: the
// grid, or the first live_ctas of a replayed one.
__device__ inline std::uint32_t working_ctas(const PartialArgs& args) {
  const std::uint32_t live = args.live_ctas == nullptr ? 0u : *args.live_ctas;
  return live == 0 ? gridDim.x : min(live, gridDim.x);
}

// Grids (kernels/launch_setup.cuh): eagerly, the mma.sync kernel runs persistent beside the wgmma
// kernel, its CTAs claiming their tiles (kClaimLaterTiles) where that pays, so that the CTAs placed
// only as the wgmma CTAs end take what is left instead of a full share (experiments 96 and 100),
// else one CTA per tile (experiment 12d); alone, persistent or one CTA per tile (experiments 13 and 65).
// Launches a graph replays for later plans run both kernels persistent (experiment 18). Where the
// plan splits the SMs between the kernels (experiment 95), both run persistent: eagerly on grids of
// that many CTAs, replayed on their usual grids of which the live plan's working CTAs take tiles.
// Launchers, one per kernel (dtype and head dim chosen at run time); max_ctas caps a persistent grid
// (0: as many CTAs as fit), as an eager call's SM partition does (experiment 95).
void launch_mma_sync_states(bool bf16, int head_dim, const PartialArgs& args, Grid grid, cudaStream_t stream, std::uint32_t max_ctas = 0);
void launch_wgmma_states(bool bf16, int head_dim, const PartialArgs& args, Grid grid, cudaStream_t stream, std::uint32_t max_ctas = 0);

#if CHUNKTREE_TILE_TRACE
// Built with the CMake option CHUNKTREE_TILE_TRACE: each kernel's tile trace of its last eager
// launch, written once `stream` has finished it if `keep`, else forgotten (kernels/tile_trace.cuh).
void write_mma_sync_trace(cudaStream_t stream, bool keep);
void write_wgmma_trace(cudaStream_t stream, bool keep);
// Whether each kernel's launches queued on `stream` from now on stamp their tiles.
void set_mma_sync_trace_stamping(cudaStream_t stream, bool on);
void set_wgmma_trace_stamping(cudaStream_t stream, bool on);
#endif

// Calls f.template operator()<Element>() with the element type of a bf16 or f16 cache.
template <typename F>
void with_element(bool bf16, F&& f) {
  if (bf16) {
    f.template operator()<__nv_bfloat16>();
  } else {
    f.template operator()<__half>();
  }
}

// A CTA's first tile starts with its Q, not its ring of K and V: every CTA starts at once, and were
// the producer to issue all its stages first, the consumers' chain of dependent loads (the tile
// record, each row's batch index, its Q row) would queue behind every SM's stages (KERNEL_NOTES,
// experiments 58 and 59). The producer issues one stage (or none, for a tile without stages), then
// awaits until every consumer thread has issued its Q copies and said so; once per CTA.
template <int Threads, int Barrier>
struct QueriesFirst {
  __device__ static void issued() { cutlass::arch::NamedBarrier::arrive(Threads, Barrier); }  // each consumer thread
  __device__ static void await() { cutlass::arch::NamedBarrier::sync(Threads, Barrier); }     // each producer thread
};

// Where query row m of a tile's item comes from and goes to, for the tile's kv head number
// `head_in_tile` (0 but in a packed tile).
struct QueryRow {
  int row;    // of the work (not of the item)
  int token;  // query token of the row, 0..queries-1
  int head;   // q head
  __device__ QueryRow(const PartialArgs& args, const WorkTile& tile, int m, int head_in_tile = 0) {
    const int per_row = args.queries * args.group;
    row = static_cast<int>(tile.item.row_begin) + m / per_row;
    token = (m % per_row) / args.group;
    head = (static_cast<int>(tile.kv_head) + head_in_tile) * args.group + m % args.group;
  }
  // Whether the row is its item's first, whose lookups the tile record carries.
  __device__ bool first_of_item(const WorkTile& tile) const { return row == static_cast<int>(tile.item.row_begin); }
  // The last KV position this query sees in a causal item.
  __device__ int limit(const PartialArgs& args, const WorkTile& tile) const {
    return (first_of_item(tile) ? tile.first_row_limit : args.row_limit[row]) + token;
  }
  // Whether the query sees any position of the item: only a causal item can hide all of them.
  __device__ bool sees_any(const PartialArgs& args, const WorkTile& tile) const {
    return tile.item.tokens > 0 && (tile.item.causal == 0 || limit(args, tile) >= tile.first_run.position);
  }
  // (query token, q head) in the caller's order: where q is read and a direct output written.
  __device__ std::int64_t token_head(const PartialArgs& args, const WorkTile& tile) const {
    const std::uint32_t batch = first_of_item(tile) ? tile.first_row_batch : args.row_to_batch[row];
    return (static_cast<std::int64_t>(batch) * args.queries + token) * args.q_heads + head;
  }
  template <typename Element, int D>
  __device__ const Element* q(const PartialArgs& args, const WorkTile& tile) const {
    return static_cast<const Element*>(args.q) + token_head(args, tile) * D;
  }
  __device__ std::int64_t state_head(const PartialArgs& args, const work::Item& item) const {
    const std::int64_t state = static_cast<std::int64_t>(item.state_begin) + (row - static_cast<int>(item.row_begin));
    return (state * args.queries + token) * args.q_heads + head;
  }
};

// A producer's walk over an item's KV runs: the rows of K and V from the current position to the
// end of the current run (one kv head's), and advance() past the rows it copied, on into the next
// run. The records of the next 32 runs are held one per lane of the warp, read by one coalesced
// load, and a run change takes its record by shuffles: with pages of 16 tokens a wgmma stage of 128
// positions crosses 8 runs, and a record loaded only one run ahead made every run change wait an L2
// round trip (docs/KERNEL_NOTES.md, experiment 77; experiment 14 for 64-token chunks). Every lane of
// the warp must walk the same runs (the producers' copies are warp-uniform).
template <typename Element>
class KvRunCursor {
 public:
  __device__ KvRunCursor(const PartialArgs& args, const WorkTile& tile)
      : runs_(args.runs),
        k_base_(args.k_base),
        v_base_(args.v_base),
        end_(tile.item.run_end),
        current_(tile.item.run_begin),
        kv_head_(static_cast<int>(tile.kv_head)),
        run_(tile.first_run) {
    load_window(current_ + 1);
  }
  // Rows left in the current run, and the elements from one row to the next.
  __device__ int available() const { return run_.tokens - run_start_; }
  __device__ std::int64_t stride() const { return run_.token_stride; }
  // Elements from the tile's kv head to the next (a packed tile's heads share the runs).
  __device__ std::int64_t head_stride() const { return run_.head_stride; }
  __device__ const Element* k_rows() const { return rows(k_base_ + run_.k_offset); }
  __device__ const Element* v_rows() const { return rows(v_base_ + run_.v_offset); }
  __device__ void advance(int count) {
    run_start_ += count;
    if (run_start_ < run_.tokens || current_ + 1 >= end_) return;
    ++current_;
    run_start_ = 0;
    if (current_ == window_begin_ + kWindow) load_window(current_);
    run_ = record_from_lane(static_cast<int>(current_ - window_begin_));
  }

 private:
  static constexpr int kWindow = 32;  // a warp's lanes
  __device__ void load_window(std::uint32_t first) {
    window_begin_ = first;
    const std::uint32_t run = first + threadIdx.x % kWindow;
    window_ = run < end_ ? runs_[run] : work::KvRun{};
  }
  __device__ work::KvRun record_from_lane(int lane) const {
    constexpr unsigned kAll = 0xffffffffu;
    work::KvRun record;
    record.k_offset = __shfl_sync(kAll, window_.k_offset, lane);
    record.v_offset = __shfl_sync(kAll, window_.v_offset, lane);
    record.token_stride = __shfl_sync(kAll, window_.token_stride, lane);
    record.head_stride = __shfl_sync(kAll, window_.head_stride, lane);
    record.tokens = __shfl_sync(kAll, window_.tokens, lane);
    record.position = __shfl_sync(kAll, window_.position, lane);
    return record;
  }
  __device__ const Element* rows(std::uintptr_t run_base) const {
    return reinterpret_cast<const Element*>(run_base) + kv_head_ * run_.head_stride + run_start_ * run_.token_stride;
  }
  const work::KvRun* runs_;
  std::uintptr_t k_base_;
  std::uintptr_t v_base_;
  std::uint32_t end_;
  std::uint32_t current_;
  std::uint32_t window_begin_ = 0;  // the run whose record lane 0 holds
  int kv_head_;
  int run_start_ = 0;
  work::KvRun run_;
  work::KvRun window_;  // the record of run window_begin_ + lane
};

// The running softmax state of one query row, in the log2 domain: the largest score folded in
// so far and the sum of exp2(score − max) (a lane's share until the caller reduces it).
struct OnlineSoftmax {
  float max = -INFINITY;
  float sum = 0.0f;

  // Folds in a block of scores whose row maximum is block_max (masked scores are −inf, NaN ones
  // are ignored by fmaxf and reach the sum); returns the factor by which to rescale what was
  // accumulated before.
  __device__ float fold(float block_max) {
    const float new_max = fmaxf(max, block_max);
    const float rescale = exp2f(max - reference_of(new_max));
    max = new_max;
    sum *= rescale;
    return rescale;
  }
  // Scores count from here: exp2(score − reference()). While nothing is seen (max −inf) that is 0,
  // so that exp2 of a masked score stays 0 instead of NaN.
  __device__ float reference() const { return reference_of(max); }

 private:
  __device__ static float reference_of(float m) { return m == -INFINITY ? 0.0f : m; }
};

// Stores N (2 or 4) adjacent output elements (index a multiple of N) in one access, rounded to
// nearest even by the hardware's conversions.
template <int N>
__device__ inline void store_adjacent(void* out, DType dtype, std::int64_t index, const float (&value)[N]) {
  static_assert(N == 2 || N == 4);
  using Words = std::conditional_t<N == 2, std::uint32_t, uint2>;  // N 16-bit elements
  union {
    Words words;
    __nv_bfloat162 bf16[N / 2];
    __half2 f16[N / 2];
  } packed;
  switch (dtype) {
    case DType::f32:
      if constexpr (N == 2) {
        *reinterpret_cast<float2*>(static_cast<float*>(out) + index) = make_float2(value[0], value[1]);
      } else {
        *reinterpret_cast<float4*>(static_cast<float*>(out) + index) = make_float4(value[0], value[1], value[2], value[3]);
      }
      return;
    case DType::bf16:
      for (int i = 0; i < N / 2; ++i) packed.bf16[i] = __float22bfloat162_rn(make_float2(value[2 * i], value[2 * i + 1]));
      *reinterpret_cast<Words*>(static_cast<__nv_bfloat16*>(out) + index) = packed.words;
      return;
    case DType::f16:
      for (int i = 0; i < N / 2; ++i) packed.f16[i] = __float22half2_rn(make_float2(value[2 * i], value[2 * i + 1]));
      *reinterpret_cast<Words*>(static_cast<__half*>(out) + index) = packed.words;
      return;
  }
}

// Where a finished query row's state goes: the output or the states, its (token, q head) index
// there, and whether the query sees any position of the item. Looking it up takes dependent global
// loads (the row's batch index, its causal limit), so that a warp storing row after row looks up
// all its rows at once, one a lane, and passes each to the storing lanes (from_lane). to_output is
// writes_output's answer, which the kernels ask once per CTA and pass in: in a replayed launch it is
// a global load, which the compiler would redo after every store (a store may alias it), and each
// store would wait on it (docs/KERNEL_NOTES.md, experiments 88 and 89). It is the same for every
// row of a launch, so from_lane does not pass it.
struct RowTarget {
  std::int64_t head = 0;
  bool visible = false;
  bool to_output;
  // A lane without a row of its own: it only carries the launch's answer for from_lane.
  __device__ explicit RowTarget(bool launch_to_output) : to_output(launch_to_output) {}
  __device__ RowTarget(const PartialArgs& args, const WorkTile& tile, const QueryRow& query, bool launch_to_output)
      : head(launch_to_output ? query.token_head(args, tile) : query.state_head(args, tile.item)),
        visible(query.sees_any(args, tile)),
        to_output(launch_to_output) {}
  __device__ RowTarget from_lane(int lane) const {
    RowTarget target = *this;
    target.head = __shfl_sync(0xffffffffu, head, lane);
    target.visible = __shfl_sync(0xffffffffu, visible, lane);
    return target;
  }
};

// Stores output dims [dim, dim + N) of a finished query row from their normalised values: in the
// caller's order and dtype with args.out (the state is the row's output), else into the states.
// A query that sees no position of the item stores o = 0, whatever masked positions held.
template <int D, int N>
__device__ void store_row_dims(const PartialArgs& args, const RowTarget& target, int dim, const float (&normalised)[N]) {
  float value[N];
#pragma unroll
  for (int i = 0; i < N; ++i) value[i] = target.visible ? normalised[i] : 0.0f;
  if (target.to_output) {
    store_adjacent<N>(args.out, args.out_dtype, target.head * D + dim, value);
  } else {
    store_adjacent<N>(args.state_o, DType::f32, target.head * D + dim, value);
  }
}

// The store of one finished query row's state, from its unnormalised output, running max (log2
// domain) and full sum. A query that sees no position of the item stores the empty state (o = 0,
// lse = −inf); any other takes 1 / sum, so that NaN scores (NaN in q or K) give a NaN state rather
// than an empty one. Whoever holds the row's dims calls put() (or folds inverse() into its own
// sums and calls store_row_dims); one thread calls put_stats().
template <int D>
class RowStore {
 public:
  __device__ RowStore(const PartialArgs& args, const RowTarget& target, float max, float sum)
      : args_(args),
        target_(target),
        inverse_(1.0f / sum),
        lse_(target.visible ? (max + log2f(sum)) * kLn2 : -INFINITY),
        max_(max) {}

  __device__ float inverse() const { return inverse_; }
  // Output dims [dim, dim + N) from their unnormalised values.
  template <int N>
  __device__ void put(int dim, const float (&value)[N]) const {
    float normalised[N];
#pragma unroll
    for (int i = 0; i < N; ++i) normalised[i] = value[i] * inverse_;
    store_row_dims<D>(args_, target_, dim, normalised);
  }
  __device__ void put_stats() const {
    if (target_.to_output) {
      if (args_.out_lse != nullptr) args_.out_lse[target_.head] = lse_;
      return;
    }
    args_.state_lse[target_.head] = lse_;
    if (args_.state_max != nullptr) args_.state_max[target_.head] = max_ * kLn2;
  }

 private:
  static constexpr float kLn2 = 0.6931471805599453f;
  const PartialArgs& args_;
  RowTarget target_;
  float inverse_;
  float lse_;
  float max_;
};

// Stores the state of one query row held in the accumulator layout of both kernels: pair(j) gives
// the unnormalised output at dims 8j + 2·(lane % 4) and the next one. Lanes with lane % 4 == 0
// write the lse.
template <int D, typename Pair>
__device__ void store_state(const PartialArgs& args, const WorkTile& tile, const QueryRow& query, bool to_output, float max, float sum,
                            Pair pair) {
  const int lane = threadIdx.x % 32;
  const RowStore<D> row(args, RowTarget(args, tile, query, to_output), max, sum);
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    const float2 value = pair(j);
    row.put(j * 8 + 2 * (lane % 4), {value.x, value.y});
  }
  if (lane % 4 == 0) row.put_stats();
}

}  // namespace chunktree::kernels
