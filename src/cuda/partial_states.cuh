// What the two partial-state kernels share: the work description uploaded by DevicePlan, the walk
// over an item's KV pieces, the cp.async row copy and the store of a finished row's state.
//
// Work tile = (item, kv head, first query row). Query rows are the item's rows × the GQA group:
// query row m is sequence row item.row_begin + m / group, q head kv_head · group + m % group.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "chunktree/prefix_cache.hpp"

#include <cute/arch/copy_sm80.hpp>

namespace chunktree::kernels {

struct WorkTile {
  std::uint32_t item;
  std::uint32_t kv_head;
  std::uint32_t m_begin;  // first query row of the item in this tile
};

struct DeviceItem {
  std::uint32_t piece_begin;
  std::uint32_t piece_end;
  std::uint32_t row_begin;
  std::uint32_t row_end;
  std::uint32_t state_begin;
};

struct PartialArgs {
  const WorkTile* tiles;
  const DeviceItem* items;
  const KvPiece* pieces;
  const std::uint32_t* row_to_batch;
  const void* q;  // [batch, q_heads, D]
  const void* k_pool;
  const void* v_pool;
  std::int64_t chunk_stride;
  std::int64_t head_stride;
  float* state_o;    // [states, q_heads, D]
  float* state_lse;  // [states, q_heads]
  float* state_max;  // [states, q_heads] or null
  int q_heads;
  int group;
  float scale_log2;  // softmax scale · log2(e): scores live in the log2 domain
};

// The wgmma kernel takes the tiles of items with more query rows than this (per kv head) and a
// head dim it is built for; the mma.sync kernel takes the rest.
constexpr int kMmaSyncMaxRows = 64;
constexpr bool wgmma_head_dim(int head_dim) { return head_dim == 64 || head_dim == 128; }

// Launchers, one per kernel (dtype and head dim chosen at run time).
void launch_mma_sync_states(bool bf16, int head_dim, const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream);
void launch_wgmma_states(bool bf16, int head_dim, const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream);

// Calls f.template operator()<Element>() with the element type of a bf16 or f16 cache.
template <typename F>
void with_element(bool bf16, F&& f) {
  if (bf16) {
    f.template operator()<__nv_bfloat16>();
  } else {
    f.template operator()<__half>();
  }
}

// The first query row's address in q, as a pointer to the row's D elements.
template <typename Element, int D>
__device__ const Element* query_row(const PartialArgs& args, const DeviceItem& item, const WorkTile& work, int m) {
  const std::uint32_t batch = args.row_to_batch[item.row_begin + m / args.group];
  const int head = static_cast<int>(work.kv_head) * args.group + m % args.group;
  return static_cast<const Element*>(args.q) + (static_cast<std::int64_t>(batch) * args.q_heads + head) * D;
}

// Walks an item's KV in steps of at most Tokens positions, piece by piece; a step never crosses
// a piece (a piece lies inside one chunk, so a step's positions are contiguous in the pool).
template <int Tokens>
struct KvWalk {
  const KvPiece* pieces;
  std::uint32_t index;
  std::uint32_t end;
  KvPiece piece;
  int start;

  __device__ KvWalk(const KvPiece* all_pieces, const DeviceItem& item)
      : pieces(all_pieces), index(item.piece_begin), end(item.piece_end), piece(all_pieces[item.piece_begin]), start(piece.begin) {}
  __device__ bool done() const { return index >= end; }
  __device__ int tokens() const { return min(Tokens, piece.end - start); }
  // Element offset of the step's first position within one head of the pool.
  __device__ std::int64_t offset(std::int64_t chunk_stride, int head_dim) const {
    return piece.chunk * chunk_stride + static_cast<std::int64_t>(start) * head_dim;
  }
  __device__ void advance() {
    start += Tokens;
    if (start >= piece.end && ++index < end) {
      piece = pieces[index];
      start = piece.begin;
    }
  }
};

// Starts copying rows [0, rows) of a matrix of D 16-bit elements per row (row r at source(r))
// into shared memory (16-byte piece c of row r at destination(r, c)) with cp.async, and
// zero-fills rows [rows, fill_rows): padding rows must hold numbers, not stale data.
// Completes at the caller's cp_async_wait.
template <int Threads, int D, typename Destination, typename Source>
__device__ void copy_rows_async(int rows, int fill_rows, Destination destination, Source source) {
  constexpr int kPiecesPerRow = D / 8;
  for (int index = threadIdx.x; index < fill_rows * kPiecesPerRow; index += Threads) {
    const int row = index / kPiecesPerRow;
    const int piece = index % kPiecesPerRow;
    const bool valid = row < rows;
    const auto* from = reinterpret_cast<const cute::uint128_t*>(source(valid ? row : 0)) + piece;
    cute::SM80_CP_ASYNC_CACHEGLOBAL_ZFILL<cute::uint128_t>::copy(*from, *reinterpret_cast<cute::uint128_t*>(destination(row, piece)),
                                                                 valid);
  }
}

// Normalises and stores the state of query row m: pair(j) gives the unnormalised output at dims
// 8j + 2·(lane % 4) and the next one (the accumulator layout of both kernels); max and sum are
// the row's running max (log2 domain) and full sum. Lanes with lane % 4 == 0 write the lse.
template <int D, typename Pair>
__device__ void store_state(const PartialArgs& args, const DeviceItem& item, const WorkTile& work, int m, float max, float sum,
                            Pair pair) {
  constexpr float kLn2 = 0.6931471805599453f;
  const int lane = threadIdx.x % 32;
  const std::uint32_t state = item.state_begin + static_cast<std::uint32_t>(m / args.group);
  const int head = static_cast<int>(work.kv_head) * args.group + m % args.group;
  const std::int64_t state_head = static_cast<std::int64_t>(state) * args.q_heads + head;
  const float inverse = 1.0f / sum;
  float* o_row = args.state_o + state_head * D;
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    const float2 value = pair(j);
    *reinterpret_cast<float2*>(o_row + j * 8 + 2 * (lane % 4)) = make_float2(value.x * inverse, value.y * inverse);
  }
  if (lane % 4 == 0) {
    args.state_lse[state_head] = (max + log2f(sum)) * kLn2;
    if (args.state_max != nullptr) args.state_max[state_head] = max * kLn2;
  }
}

}  // namespace chunktree::kernels
