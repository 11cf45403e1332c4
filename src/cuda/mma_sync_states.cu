// Partial states on mma.sync tiles: 64 query rows per CTA (16 per warp), 64 KV positions per
// step, a cp.async ring of K/V stages. Takes decode without sharing, small GQA groups and the
// head dims the wgmma kernel is not built for. A narrow tile (at most 16 query rows) splits each
// step's positions over the 4 warps and combines their states at the end.
#include <climits>
#include <cmath>
#include <string>

#include "chunktree/types.hpp"
#include "cuda/check.cuh"
#include "cuda/partial_states.cuh"
#include "cuda/tiles.cuh"

namespace chunktree::kernels {
namespace {

constexpr int kTileRows = 64;    // query rows per CTA, 16 per warp
constexpr int kTileTokens = 64;  // KV positions per step
constexpr int kThreads = 128;

// Combines the 4 warps' states of a narrow tile (the same 16 rows, each warp a quarter of every
// step's positions) into warp 0's registers, through `scratch` in shared memory (the K/V stages,
// free once the loop is done). Called by all threads.
template <int D>
__device__ void combine_warps(float* scratch, tiles::Accumulator (&o)[D / 8], float (&running_max)[2], float (&sum)[2]) {
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  float* o_parts = scratch;                // [warp][16 rows][D]
  float* max_parts = scratch + 4 * 16 * D;  // [warp][16 rows]
  float* sum_parts = max_parts + 4 * 16;    // [warp][16 rows]
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = lane / 4 + 8 * h;
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      *reinterpret_cast<float2*>(o_parts + (warp * 16 + row) * D + d * 8 + 2 * (lane % 4)) = make_float2(o[d][2 * h], o[d][2 * h + 1]);
    }
    if (lane % 4 == 0) {
      max_parts[warp * 16 + row] = running_max[h];
      sum_parts[warp * 16 + row] = sum[h];
    }
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = lane / 4 + 8 * h;
    float top = -INFINITY;
    for (int w = 0; w < 4; ++w) top = fmaxf(top, max_parts[w * 16 + row]);
    float weight[4];
    float total = 0.0f;
    for (int w = 0; w < 4; ++w) {
      weight[w] = max_parts[w * 16 + row] == -INFINITY ? 0.0f : exp2f(max_parts[w * 16 + row] - top);
      total += weight[w] * sum_parts[w * 16 + row];
    }
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      float2 combined = make_float2(0.0f, 0.0f);
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float2 part = *reinterpret_cast<const float2*>(o_parts + (w * 16 + row) * D + d * 8 + 2 * (lane % 4));
        combined.x += weight[w] * part.x;
        combined.y += weight[w] * part.y;
      }
      o[d][2 * h] = combined.x;
      o[d][2 * h + 1] = combined.y;
    }
    running_max[h] = top;
    sum[h] = total;
  }
}

// K/V stages in flight: three where shared memory allows two CTAs per SM, two for d = 256.
template <int D>
constexpr int kStages = D == 256 ? 2 : 3;

template <typename Element, int D, int Stages = kStages<D>>
__global__ void __launch_bounds__(kThreads) mma_sync_states_kernel(const PartialArgs args) {
  using Tile = tiles::SharedTile<Element, kTileRows, D>;
  extern __shared__ __align__(128) unsigned char shared[];
  // Q, then Stages stages of (K, V): later steps' copies run while this step computes.
  const Tile q_tile{reinterpret_cast<Element*>(shared)};
  const auto k_tile_of = [&](int stage) { return Tile{q_tile.data + (1 + 2 * stage) * Tile::kElements}; };
  const auto v_tile_of = [&](int stage) { return Tile{q_tile.data + (2 + 2 * stage) * Tile::kElements}; };

  const WorkTile work = args.tiles[blockIdx.x];
  const work::Item item = args.items[work.item];
  const int query_rows = static_cast<int>(item.row_end - item.row_begin) * args.queries * args.group;
  const int tile_rows = min(kTileRows, query_rows - static_cast<int>(work.m_begin));
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  // A narrow tile (at most 16 query rows: decode without sharing, small GQA groups) splits each
  // 64-position step over the 4 warps instead of the rows, and combines their states at the end;
  // a wide tile gives each warp 16 rows, and warps past the last query row only copy.
  const bool narrow = tile_rows <= 16;
  const int row0 = narrow ? 0 : warp * 16;
  const bool computes = narrow || row0 < tile_rows;
  // The causal limit of this lane's two rows (rows past the tile see everything; never stored).
  int limit[2] = {INT_MAX, INT_MAX};
  if (item.causal != 0) {
    for (int h = 0; h < 2; ++h) {
      const int m = static_cast<int>(work.m_begin) + row0 + lane / 4 + 8 * h;
      if (m < query_rows) limit[h] = QueryRow(args, item, work, m).limit(args);
    }
  }

  copy_rows_async<kThreads, D>(
      tile_rows, kTileRows, [&](int r, int c) { return q_tile.chunk(r, c); },
      [&](int r) { return QueryRow(args, item, work, static_cast<int>(work.m_begin) + r).template q<Element, D>(args); });

  auto copy_step = [&](const KvWalk<kTileTokens>& walk, int stage) {
    const int tokens = walk.tokens();
    const int fill = (tokens + 15) / 16 * 16;
    const std::int64_t stride = walk.run.token_stride;
    const Element* k_rows = walk.template rows<Element>(args.k_base, walk.run.k_offset, static_cast<int>(work.kv_head));
    const Element* v_rows = walk.template rows<Element>(args.v_base, walk.run.v_offset, static_cast<int>(work.kv_head));
    const Tile k_tile = k_tile_of(stage);
    const Tile v_tile = v_tile_of(stage);
    copy_rows_async<kThreads, D>(
        tokens, fill, [&](int r, int c) { return k_tile.chunk(r, c); }, [&](int t) { return k_rows + t * stride; });
    copy_rows_async<kThreads, D>(
        tokens, fill, [&](int r, int c) { return v_tile.chunk(r, c); }, [&](int t) { return v_rows + t * stride; });
  };

  // The copy walk runs Stages - 1 steps ahead of the compute walk; one commit group per step
  // (empty past the end) keeps cp_async_wait's count uniform.
  KvWalk<kTileTokens> walk(args.runs, item);
  KvWalk<kTileTokens> load_walk = walk;
#pragma unroll
  for (int stage = 0; stage < Stages - 1; ++stage) {
    if (!load_walk.done()) {
      copy_step(load_walk, stage);
      load_walk.advance();
    }
    cute::cp_async_fence();
  }

  tiles::Accumulator o[D / 8] = {};
  float running_max[2] = {-INFINITY, -INFINITY};  // rows lane/4 and lane/4 + 8, log2 domain
  float running_sum[2] = {0.0f, 0.0f};            // this lane's share; reduced at the end

  for (int step = 0; !walk.done(); ++step) {
    const int stage = step % Stages;
    const int tokens = walk.tokens();
    const int position = walk.position();
    const int blocks16 = (tokens + 15) / 16;
    // The 16-position blocks and positions this warp computes: all of them, or its quarter.
    const int block_begin = narrow ? warp : 0;
    const int block_end = narrow ? min(blocks16, warp + 1) : blocks16;
    const int column_begin = 16 * block_begin;
    const int column_end = min(tokens, 16 * block_end);
    if (!load_walk.done()) {
      copy_step(load_walk, (step + Stages - 1) % Stages);
      load_walk.advance();
    }
    cute::cp_async_fence();
    cute::cp_async_wait<Stages - 1>();  // this step's K and V (and Q) have landed
    __syncthreads();
    const Tile k_tile = k_tile_of(stage);
    const Tile v_tile = v_tile_of(stage);

    if (computes) {
      // S = Q·Kᵀ for the warp's 16 rows and up to 64 positions.
      tiles::Accumulator s[kTileTokens / 8] = {};
#pragma unroll
      for (int kc = 0; kc < D / 8; kc += 2) {
        std::uint32_t a[4];
        tiles::load_a(q_tile, row0, kc, a);
#pragma unroll
        for (int b16 = 0; b16 < kTileTokens / 16; ++b16) {
          if (b16 >= block_begin && b16 < block_end) {
            std::uint32_t b[4];
            tiles::load_b_nk(k_tile, b16 * 16, kc, b);
            tiles::mma<Element>(s[2 * b16], a, b[0], b[1]);
            tiles::mma<Element>(s[2 * b16 + 1], a, b[2], b[3]);
          }
        }
      }

      // Online softmax: scale, mask positions past the run (and past the causal limit), rescale
      // what came before.
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float tile_max = -INFINITY;
        const int last_visible = limit[h] - position;  // column index; INT_MAX - position stays in range
#pragma unroll
        for (int n = 0; n < kTileTokens / 8; ++n) {
#pragma unroll
          for (int e = 2 * h; e < 2 * h + 2; ++e) {
            const int column = n * 8 + 2 * (lane % 4) + e % 2;
            s[n][e] = column >= column_begin && column < column_end && column <= last_visible ? s[n][e] * args.scale_log2 : -INFINITY;
            tile_max = fmaxf(tile_max, s[n][e]);
          }
        }
        const float new_max = fmaxf(running_max[h], tiles::row_max(tile_max));
        // -inf: no position of this warp so far (narrow tiles): subtracting 0 keeps exp2 at 0, not NaN.
        const float reference = new_max == -INFINITY ? 0.0f : new_max;
        const float rescale = exp2f(running_max[h] - reference);
        running_max[h] = new_max;
        running_sum[h] *= rescale;
#pragma unroll
        for (int d = 0; d < D / 8; ++d) {
          o[d][2 * h] *= rescale;
          o[d][2 * h + 1] *= rescale;
        }
#pragma unroll
        for (int n = 0; n < kTileTokens / 8; ++n) {
#pragma unroll
          for (int e = 2 * h; e < 2 * h + 2; ++e) {
            s[n][e] = exp2f(s[n][e] - reference);
            running_sum[h] += s[n][e];
          }
        }
      }

      // O += P·V.
#pragma unroll
      for (int b16 = 0; b16 < kTileTokens / 16; ++b16) {
        if (b16 >= block_begin && b16 < block_end) {
          std::uint32_t a[4];
          tiles::accumulators_to_a<Element>(s[2 * b16], s[2 * b16 + 1], a);
#pragma unroll
          for (int dc = 0; dc < D / 8; dc += 2) {
            std::uint32_t b[4];
            tiles::load_b_kn(v_tile, b16 * 16, dc, b);
            tiles::mma<Element>(o[dc], a, b[0], b[1]);
            tiles::mma<Element>(o[dc + 1], a, b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before a later copy refills it
    walk.advance();
  }

  float sum[2] = {tiles::row_sum(running_sum[0]), tiles::row_sum(running_sum[1])};
  if (narrow) combine_warps<D>(reinterpret_cast<float*>(q_tile.data + Tile::kElements), o, running_max, sum);

  // Store the states of the warp's valid rows (warp 0's, for a narrow tile).
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = static_cast<int>(work.m_begin) + row0 + lane / 4 + 8 * h;
    if (m >= query_rows || (narrow && warp != 0)) continue;
    store_state<D>(args, item, QueryRow(args, item, work, m), running_max[h], sum[h],
                   [&](int j) { return make_float2(o[j][2 * h], o[j][2 * h + 1]); });
  }
}


template <typename Element, int D>
void launch(const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream) {
  constexpr int kSharedBytes = (1 + 2 * kStages<D>) * kTileRows * D * static_cast<int>(sizeof(Element));  // Q + stages × (K, V)
  // Per launch, not once per process: the limit belongs to the current device.
  CHUNKTREE_CUDA_CHECK(
      cudaFuncSetAttribute(mma_sync_states_kernel<Element, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBytes));
  mma_sync_states_kernel<Element, D><<<tiles, kThreads, kSharedBytes, stream>>>(args);
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_mma_sync_states(bool bf16, int head_dim, const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream) {
  with_element(bf16, [&]<typename Element>() {
    switch (head_dim) {
      case 64: return launch<Element, 64>(args, tiles, stream);
      case 128: return launch<Element, 128>(args, tiles, stream);
      case 256: return launch<Element, 256>(args, tiles, stream);
    }
    throw Error(ErrorCode::unsupported, "cuda backend: head_dim " + std::to_string(head_dim) + " is not 64, 128 or 256");
  });
}

}  // namespace chunktree::kernels
