// The mma.sync partial-states kernel's copies (mma_sync_states.cu): a tile's record and Q rows, which
// the consumer warps copy, and the producer warpgroup's stream of the tile's KV, stage after stage,
// into the ring. Included by that file alone.
#pragma once

#include <cstdint>

#include "kernels/mma_sync_layout.cuh"
#include "kernels/partial_states.cuh"
#include "kernels/stage_copy.cuh"
#include "kernels/tiles.cuh"

#include <cute/arch/copy_sm80.hpp>
#include <cute/arch/copy_sm90_tma.hpp>
#include <cutlass/arch/barrier.h>

namespace chunktree::kernels::mma_sync {

// Starts copying a tile's Q rows into shared memory with cp.async (zeros past them: padding rows
// must hold numbers, not stale data; a packed tile's kv head h in row group h), `thread` being the
// caller's index among the four warps that share the copy. Warp w copies rows 16w .. 16w + 15, whose
// sources its lanes 0-15 look up first, one row each and all at once, and pass by shuffles: looked up
// in the copy loop, each row's lookup (the tile record, the row's batch index) waited on the last
// (experiment 91). Completes at the caller's cp_async_wait or on an mbarrier.
template <int Threads, typename Element, int D>
__device__ void copy_tile_q(const PartialArgs& args, const WorkTile& tile, Element* q_data, int thread) {
  static_assert(Threads == 128 && kTileRows == 64, "four warps, 16 rows each");
  constexpr int kPieces = D / 8;  // 16-byte pieces a row
  const int lane = thread % 32;
  const int warp_row0 = 16 * (thread / 32);
  const int query_rows = static_cast<int>(tile.item.row_end - tile.item.row_begin) * args.queries * args.group;
  const TileRow lane_row(tile, warp_row0 + lane % 16);
  const bool lane_valid = lane_row.head < tile.kv_head_count && lane_row.item_row < query_rows;
  // A row past the item reads nothing (zero-filled): any address will do.
  const Element* lane_source = lane_valid ? lane_row.query(args, tile).template q<Element, D>(args, tile) : static_cast<const Element*>(args.q);
  const tiles::SharedTile<Element, kTileRows, D> q_tile{q_data};
#pragma unroll
  for (int pass = 0; pass < 16 * kPieces / 32; ++pass) {
    const int index = lane + 32 * pass;
    const int row = index / kPieces;  // of the warp's 16
    const int piece = index % kPieces;
    const bool valid = __shfl_sync(0xffffffffu, lane_valid, row);
    const auto* source = reinterpret_cast<const Element*>(__shfl_sync(0xffffffffu, reinterpret_cast<std::uintptr_t>(lane_source), row));
    cute::SM80_CP_ASYNC_CACHEGLOBAL_ZFILL<cute::uint128_t>::copy(reinterpret_cast<const cute::uint128_t*>(source)[piece],
                                                                 *reinterpret_cast<cute::uint128_t*>(q_tile.chunk(warp_row0 + row, piece)), valid);
  }
}

// Warms in L2 the Q rows of a tile the producer has just taken, which the consumers copy in the end
// phase of the tile before: a copy then from HBM would queue behind this CTA's streaming stages
// (experiment 91). Only the item's first row (every row
// of a decode tile), whose batch index the record carries, so that nothing here waits for a load but
// the record's, which the stream of the tile's KV waits for anyway: per query token, the Q of the
// tile's kv heads' q heads is one contiguous run of lines. At most a line a producer thread: the Q
// tile's 64 rows at d ≤ 128.
template <typename Element, int D>
__device__ void warm_tile_q(const PartialArgs& args, const WorkTile& tile) {
  if (threadIdx.x != 0 || tile.item.row_begin == tile.item.row_end || tile.m_begin >= static_cast<std::uint32_t>(args.queries * args.group)) return;
  const int run_elements = tile.kv_head_count * args.group * D;
  const Element* first = static_cast<const Element*>(args.q) +
                         (static_cast<std::int64_t>(tile.first_row_batch) * args.queries * args.q_heads + tile.kv_head * args.group) * D;
#pragma unroll 1
  for (int token = 0; token < args.queries; ++token) {
    cute::SM90_BULK_COPY_G2S::PREFETCH::copy(first + static_cast<std::int64_t>(token) * args.q_heads * D, run_elements * static_cast<int>(sizeof(Element)));
  }
}

// Starts copying a tile's record into shared memory with cp.async, `thread` being the caller's index
// among the threads that share the copy.
__device__ inline void copy_record(const WorkTile& tile, WorkTile* record, int thread) {
  constexpr int kRecordPieces = sizeof(WorkTile) / 16;
  static_assert(sizeof(WorkTile) % 16 == 0, "a tile record is copied in 16-byte pieces");
  if (thread < kRecordPieces) {
    cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(reinterpret_cast<const cute::uint128_t*>(&tile)[thread],
                                                          reinterpret_cast<cute::uint128_t*>(record)[thread]);
  }
}

// Starts copying a tile's record and its Q rows into shared memory with cp.async.
template <int Threads, typename Element, int D>
__device__ void copy_tile(const PartialArgs& args, const WorkTile& tile, WorkTile* record, Element* q_data, int thread) {
  copy_record(tile, record, thread);
  copy_tile_q<Threads, Element, D>(args, tile, q_data, thread);
}

// Producer: stage after stage of one tile's KV, packed across the item's runs; the last 16-position
// block's rows past the item's end are zeros, so that masked columns meet zeros, never stale NaNs,
// in P·V. It calls after_stage() after each stage it started.
template <typename Element, int D, int Stages, typename AfterStage>
__device__ void stream_kv(const PartialArgs& args, const WorkTile& work_tile, bool warm_q, Ring<Stages>& ring, Element* stages,
                          AfterStage after_stage) {
  using Tile = tiles::SharedTile<Element, kStageTokens, D>;
  using Copy = StageCopy<D, kStageTokens, kProducerThreads>;
  const int thread = static_cast<int>(threadIdx.x);  // 0 .. kProducerThreads - 1
  const work::Item& item = work_tile.item;
  const StageFill fill(work_tile);
  KvRunCursor<Element> cursor(args, work_tile);
  if (warm_q) warm_tile_q<Element, D>(args, work_tile);
  const int steps = fill.count(item);
  for (int step = 0; step < steps; ++step, ++ring.passed) {
    const int stage = ring.stage();
    if (ring.passed >= Stages) cutlass::arch::ClusterBarrier::wait(&ring.empty[stage], ring.phase() ^ 1u);
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
    after_stage();
  }
}

}  // namespace chunktree::kernels::mma_sync
