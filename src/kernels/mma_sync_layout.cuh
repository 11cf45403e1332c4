// The mma.sync partial-states kernel's tile (mma_sync_states.cu): its threads (a producer warpgroup
// and four consumer warps), its stages and CTAs per SM by head dim, how a tile's KV fills a stage,
// which query rows and positions each consumer warp computes, and the ring of stages that the
// producer fills and the consumers drain. Included by that file alone.
#pragma once

#include <cstdint>

#include "kernels/partial_states.cuh"
#include "kernels/tile_shapes.hpp"

namespace chunktree::kernels::mma_sync {

constexpr int kTileRows = kMmaSyncTileRows;  // 16 per row group
constexpr int kStageTokens = 64;  // KV positions per stage
constexpr int kBlockTokens = 16;  // positions of one block: an mma's columns of S, of a warp's share of a stage
static_assert(kBlockTokens == kMmaSyncPackedTokens && kMmaSyncPackedMaxRows == kBlockTokens &&
              kMmaSyncPackedHeads * kBlockTokens == kStageTokens);
constexpr int kProducerThreads = 128;  // warpgroup 0
constexpr int kConsumerWarps = 4;      // warpgroup 1
constexpr int kConsumerThreads = 32 * kConsumerWarps;
constexpr int kThreads = kProducerThreads + kConsumerThreads;
// Named barriers (ids past CUTLASS's reserved ones) among the consumer warps.
constexpr int kStatesParkedBarrier = 1;
constexpr int kQueryLoadedBarrier = 2;
// Between the producer and the consumers, once a CTA: its first tile's Q copies go before the
// producer's second stage.
using FirstQueries = QueriesFirst<kThreads, 3>;
// Among the producer's threads: the next tile that thread 0 claimed is in shared memory (experiment 96).
constexpr int kTileClaimedBarrier = 4;
// The end phase parks every warp's 16 rows of (max, sum) here, and of o in the tile's last stage.
constexpr int kParkedRows = 16 * kConsumerWarps;
constexpr int kParkedStatsBytes = 2 * kParkedRows * sizeof(float);

// With two CTAs per SM the producer warpgroup gives registers to the consumers (setmaxnreg):
// 128 · (56 + 200) fills half the register file.
constexpr int kProducerRegisters = 56;
constexpr int kConsumerRegisters = 200;

// The claimed tiles' queue (experiment 96): its slots for the indices the producer claims ahead of the
// tiles it streams. One, so that a ticket is drawn only once the consumers took the one before, as
// they started the last stage of the tile before that (experiments 101 and 103).
constexpr int kClaimedTileSlots = 1;
static_assert(kClaimedTileSlots == 1, "a CTA's look-ahead of claimed tiles (experiments 101 and 103) counts on one slot");

// Stages and CTAs per SM by head dim: about 200 KiB of K/V in flight per SM (Little's law asks for
// ~50 KiB at HBM speed) and two CTAs per SM where shared memory allows, so that one CTA's start
// and end overlap another's streaming.
template <int D>
struct StreamShape {
  static constexpr int kStages = D == 64 ? 6 : 3;
  static constexpr int kMinBlocksPerSm = mma_sync_ctas_per_sm(D);
  static constexpr bool kReallocateRegisters = kMinBlocksPerSm == 2;
  // The ring's mbarriers, the claimed tiles' queue (its mbarriers, then its indices), the CTA's
  // claimed first tile (a slot or a ticket); the consumers' two tile records (by tile parity), then the parked
  // (max, sum) of the end phase. Keeps the stages 128-byte aligned; at d = 128 two CTAs' shared
  // memory fills an SM to within a few hundred bytes, so the control words share one 128-byte block.
  static constexpr int kClaimedTilesOffset = 2 * kStages * 8;
  static constexpr int kClaimedIndicesOffset = kClaimedTilesOffset + 2 * kClaimedTileSlots * 8;
  static constexpr int kFirstTileOffset = kClaimedIndicesOffset + (kClaimedTileSlots + 1) * 4;  // after the slots and the producer's word
  static constexpr int kBarrierBytes = (kFirstTileOffset + 4 + 127) / 128 * 128;
  static constexpr int kRecordsBytes = (2 * sizeof(WorkTile) + 127) / 128 * 128;
  static constexpr int kControlBytes = kBarrierBytes + kRecordsBytes + kParkedStatsBytes;
  static constexpr int kSharedBytes = kControlBytes + (kTileRows + 2 * kStages * kStageTokens) * D * 2;
  // An SM's 228 KiB hold kMinBlocksPerSm CTAs, each with the 1 KiB the hardware reserves.
  static_assert(kMinBlocksPerSm * (kSharedBytes + 1024) <= 228 * 1024);
};

// How a tile's KV fills the stages: kStageTokens positions of its one kv head a stage, or (packed
// kv heads) kBlockTokens positions of each head, head h in block h.
struct StageFill {
  int heads;
  int tokens_per_stage;
  __device__ explicit StageFill(const WorkTile& tile)
      : heads(tile.kv_head_count), tokens_per_stage(tile.kv_head_count > 1 ? kBlockTokens : kStageTokens) {}
  __device__ bool packed() const { return heads > 1; }
  // The item's stages, and the positions (of each head) in stage `step`.
  __device__ int count(const work::Item& item) const { return static_cast<int>((item.tokens + tokens_per_stage - 1) / tokens_per_stage); }
  __device__ int tokens(const work::Item& item, int step) const {
    const std::int64_t rest = item.tokens - std::int64_t{step} * tokens_per_stage;
    return rest < tokens_per_stage ? static_cast<int>(rest) : tokens_per_stage;
  }
};

// The consumer warps are warpgroup 1: warps 0..3 of it.
inline __device__ int consumer_warp() { return (static_cast<int>(threadIdx.x) - kProducerThreads) / 32; }

// Where row r of a tile's Q comes from: query row `item_row` of the item, of the tile's kv head
// `head`. A packed tile holds rows 0..15 of each of its heads, head h in rows 16h..16h + 15; any
// other tile rows m_begin, m_begin + 1, ... of its one head. The Q copy, the warps' shares and the
// end phase all map rows through this.
struct TileRow {
  int item_row;
  int head;
  __device__ TileRow(bool packed, int m_begin, int r) : item_row(packed ? r % 16 : m_begin + r), head(packed ? r / 16 : 0) {}
  __device__ TileRow(const WorkTile& tile, int r) : TileRow(tile.kv_head_count > 1, static_cast<int>(tile.m_begin), r) {}
  __device__ QueryRow query(const PartialArgs& args, const WorkTile& tile) const { return QueryRow(args, tile, item_row, head); }
};

// How a tile's consumer warps divide it: row groups of 16 query rows, and splits of every stage's
// positions (the warp's blocks of 16 positions) within a row group. A packed tile has a row group
// per kv head, each over its own block.
struct WarpLayout {
  int row_groups;
  int splits;
  __device__ WarpLayout(int tile_rows, const StageFill& fill)
      : row_groups(fill.packed() ? fill.heads : (tile_rows + 15) / 16),
        splits(fill.packed() || row_groups > 2 ? 1 : (row_groups == 1 ? 4 : 2)) {}
};

// What one consumer warp computes: query rows [first_row, first_row + 16) of kv head head_in_tile
// (Q tile rows from row0) against blocks [block0, block0 + blocks) of every stage, where block0
// holds the positions from column0 on (counted from the stage's first position).
struct WarpShare {
  bool has_rows;
  int row_group;
  int split;
  int row0;
  int head_in_tile;
  int first_row;
  int block0;
  int blocks;
  int column0;
  __device__ WarpShare(const WarpLayout& layout, const StageFill& fill, int m_begin, int warp)
      : has_rows(warp / layout.splits < layout.row_groups),
        row_group(warp / layout.splits),
        split(warp % layout.splits),
        row0(16 * row_group),
        head_in_tile(TileRow(fill.packed(), m_begin, row0).head),
        first_row(TileRow(fill.packed(), m_begin, row0).item_row),
        block0(fill.packed() ? warp : split * (kStageTokens / kBlockTokens / layout.splits)),
        blocks(fill.packed() ? 1 : kStageTokens / kBlockTokens / layout.splits),
        column0(fill.packed() ? 0 : kBlockTokens * block0) {}
};

// The ring of stages, shared by the producer and the consumers: both count the stages they have
// passed, across tiles, so stage and mbarrier phase follow from the count.
template <int Stages>
struct Ring {
  std::uint64_t* full;   // producer → consumers: a stage has landed
  // consumers → producer: a stage may be refilled. Every consumer thread arrives after its own
  // reads (not one lane per warp after __syncwarp: racecheck does not follow that ordering and
  // reports the refill as a race; docs/KERNEL_NOTES.md, racecheck at fec9e8b).
  std::uint64_t* empty;
  std::uint32_t passed = 0;
  __device__ int stage() const { return static_cast<int>(passed % Stages); }
  __device__ std::uint32_t phase() const { return (passed / Stages) & 1u; }
};

}  // namespace chunktree::kernels::mma_sync
