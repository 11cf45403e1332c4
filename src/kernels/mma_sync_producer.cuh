// The mma.sync partial-states kernel's producer warpgroup (mma_sync_states.cu): it hands each tile
// (its record and Q rows) to the consumer warps and streams the tile's KV, stage after stage, into
// the ring. Included by that file alone.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/mma_sync_layout.cuh"
#include "kernels/partial_states.cuh"
#include "kernels/stage_copy.cuh"
#include "kernels/tiles.cuh"

#include <cute/arch/copy_sm80.hpp>
#include <cutlass/arch/barrier.h>

namespace chunktree::kernels::mma_sync {

// Starts copying a tile's Q rows into shared memory (zeros past them; a packed tile's kv head h in
// row group h), `thread` being the caller's index among the Threads threads that share the copy.
template <int Threads, typename Element, int D>
__device__ void copy_tile_q(const PartialArgs& args, const WorkTile& tile, Element* q_data, int thread) {
  const int query_rows = static_cast<int>(tile.item.row_end - tile.item.row_begin) * args.queries * args.group;
  const tiles::SharedTile<Element, kTileRows, D> q_tile{q_data};
  copy_rows_async<Threads, D>(
      thread, kTileRows,
      [&](int r) {
        const TileRow row(tile, r);
        return row.head < tile.kv_head_count && row.item_row < query_rows;
      },
      [&](int r, int c) { return q_tile.chunk(r, c); }, [&](int r) { return TileRow(tile, r).query(args, tile).template q<Element, D>(args); });
}

// Starts copying a tile's record and its Q rows into shared memory with cp.async (the record does
// not pass through registers: the producer has 56).
template <int Threads, typename Element, int D>
__device__ void copy_tile(const PartialArgs& args, const WorkTile& tile, WorkTile* record, Element* q_data, int thread) {
  constexpr int kRecordPieces = sizeof(WorkTile) / 16;
  static_assert(sizeof(WorkTile) % 16 == 0, "a tile record is copied in 16-byte pieces");
  if (thread < kRecordPieces) {
    cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(reinterpret_cast<const cute::uint128_t*>(&tile)[thread],
                                                          reinterpret_cast<cute::uint128_t*>(record)[thread]);
  }
  copy_tile_q<Threads, Element, D>(args, tile, q_data, thread);
}

// The producer's side of handing tiles to the consumers: for tile after tile, once the consumers
// are done with the last tile's Q rows (`released`), the tile's record and its Q rows are copied
// into shared memory with cp.async and complete on `handed` (every producer thread's arrival; the
// record does not pass through the producer's registers, of which it has 56). The producer offers the hand-off while it waits for a
// free stage, so the next tile's KV and its Q both stream during the last tile's final stages.
template <typename Element, int D>
struct TileHandoff {
  std::uint64_t* handed;    // producer → consumers, kProducerThreads arrivals per tile
  std::uint64_t* released;  // consumers → producer, one arrival per consumer thread per tile
  WorkTile* handed_tiles;  // tile n's in handed_tiles[n % 2]: the consumers read it until they finish tile n
  Element* q_data;
  std::uint32_t count = 0;  // tiles handed off so far
  std::uint32_t pending = UINT_MAX;  // the tile waiting to be handed off, if any

  __device__ bool q_free() const { return count == 0 || cutlass::arch::ClusterBarrier::test_wait(released, (count - 1) & 1u, 1u); }

  __device__ void hand_off(const PartialArgs& args) {
    const int thread = static_cast<int>(threadIdx.x);  // 0 .. kProducerThreads - 1
    copy_tile<kProducerThreads, Element, D>(args, args.tiles[pending], &handed_tiles[count & 1u], q_data, thread);
    cutlass::arch::cpasync_barrier_arrive_noinc(handed);
    ++count;
    pending = UINT_MAX;
  }
  // Hands off the pending tile if the consumers are done with the last one's Q rows; whether a
  // tile is still pending.
  __device__ bool offer(const PartialArgs& args) {
    if (pending != UINT_MAX && q_free()) hand_off(args);
    return pending != UINT_MAX;
  }
  // Hands off the pending tile, waiting for the consumers if need be.
  __device__ void finish(const PartialArgs& args) {
    if (pending == UINT_MAX) return;
    if (count > 0) cutlass::arch::ClusterBarrier::wait(released, (count - 1) & 1u);
    hand_off(args);
  }
};

// Producer: stage after stage of one tile's KV, packed across the item's runs; the last 16-position
// block's rows past the item's end are zeros, so that masked columns meet zeros, never stale NaNs,
// in P·V. It calls idle() after each stage it started and while it waits for a free one; idle()
// says whether it still has work waiting.
template <typename Element, int D, int Stages, typename Idle>
__device__ void stream_kv(const PartialArgs& args, const WorkTile& work_tile, Ring<Stages>& ring, Element* stages, Idle idle) {
  using Tile = tiles::SharedTile<Element, kStageTokens, D>;
  using Copy = StageCopy<D, kStageTokens, kProducerThreads>;
  const int thread = static_cast<int>(threadIdx.x);  // 0 .. kProducerThreads - 1
  const work::Item& item = work_tile.item;
  const StageFill fill(work_tile);
  KvRunCursor<Element> cursor(args, work_tile);
  const int steps = fill.count(item);
  for (int step = 0; step < steps; ++step, ++ring.passed) {
    const int stage = ring.stage();
    if (ring.passed >= Stages) {
      // Polls without sleeping while idle() has work waiting: try_wait may suspend the thread past
      // the moment that work becomes possible (experiment 13: the hand-off came 4.8 µs late).
      while (!cutlass::arch::ClusterBarrier::test_wait(&ring.empty[stage], ring.phase() ^ 1u, 1u)) {
        if (!idle()) {
          cutlass::arch::ClusterBarrier::wait(&ring.empty[stage], ring.phase() ^ 1u);
          break;
        }
      }
    }
    const Tile k_tile{stages + (2 * stage) * Tile::kElements};
    const Tile v_tile{stages + (2 * stage + 1) * Tile::kElements};
    const auto k_piece = [&](int, int row, int piece) { return k_tile.chunk(row, piece); };
    const auto v_piece = [&](int, int row, int piece) { return v_tile.chunk(row, piece); };
    const int tokens = fill.tokens(item, step);
    for (int filled = 0; filled < tokens;) {
      const int count = min(tokens - filled, cursor.available());
#pragma unroll 1
      for (int head = 0; head < fill.heads; ++head) {
        copy_segment<Copy>(thread, k_piece, v_piece, cursor.k_rows() + head * cursor.head_stride(),
                           cursor.v_rows() + head * cursor.head_stride(), cursor.stride(), head * kBlockTokens + filled, count);
      }
      filled += count;
      cursor.advance(count);
    }
    if (tokens % kBlockTokens != 0) {
      const int padded = (tokens + kBlockTokens - 1) / kBlockTokens * kBlockTokens;
      for (int head = 0; head < fill.heads; ++head) {
        zero_rows<Copy>(thread, k_piece, v_piece, args.q, head * kBlockTokens + tokens, head * kBlockTokens + padded);
      }
    }
    cutlass::arch::cpasync_barrier_arrive_noinc(&ring.full[stage]);
    idle();
  }
}

}  // namespace chunktree::kernels::mma_sync
