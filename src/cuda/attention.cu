// The CUDA backend: one kernel computes the partial state of every (item, row) of a plan on
// tensor cores, a second merges each row's states in plan order.
//
// Work tile = (item, kv head, 64 query rows). Query rows are the item's rows × the GQA group,
// so a shared span's rows and heads form the M dimension of one product, and a private span's
// GQA group is packed into rows. The CTA streams the item's KV through shared memory 64
// positions at a time, across all its chunks, with an online softmax: each KV byte of an item
// is read once per kv head (docs/DESIGN.md, "CUDA backend").
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "chunktree/cuda_backend.hpp"
#include "chunktree/state.hpp"
#include "cuda/check.cuh"
#include "cuda/memory.hpp"
#include "cuda/tiles.cuh"

#include <cute/arch/copy_sm80.hpp>

namespace chunktree {
namespace {

constexpr int kTileRows = 64;    // query rows per CTA, 16 per warp
constexpr int kTileTokens = 64;  // KV positions per step
constexpr int kThreads = 128;

struct WorkTile {
  std::uint32_t item;
  std::uint32_t kv_head;
  std::uint32_t m_begin;  // first query row (row × group + g) of the item in this tile
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

// Starts copying rows [0, rows) of a [*, D] global matrix (row r at row_address(r)) into a
// swizzled tile with cp.async, and zero-fills rows [rows, fill_rows): padding rows must hold
// numbers, not stale data. Completes at the caller's cp_async_wait.
template <typename Tile, typename RowAddress>
__device__ void copy_rows_async(const Tile& tile, int rows, int fill_rows, RowAddress row_address) {
  for (int index = threadIdx.x; index < fill_rows * Tile::kChunksPerRow; index += kThreads) {
    const int row = index / Tile::kChunksPerRow;
    const int chunk = index % Tile::kChunksPerRow;
    const bool valid = row < rows;
    const auto* source = reinterpret_cast<const cute::uint128_t*>(row_address(valid ? row : 0)) + chunk;
    cute::SM80_CP_ASYNC_CACHEGLOBAL_ZFILL<cute::uint128_t>::copy(*source, *reinterpret_cast<cute::uint128_t*>(tile.chunk(row, chunk)),
                                                                 valid);
  }
}

// Walks an item's KV 64 positions at a time: piece by piece, each piece from begin to end.
struct KvCursor {
  std::uint32_t piece;
  int start;
};

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
__global__ void __launch_bounds__(kThreads) partial_states_kernel(const PartialArgs args) {
  using Tile = tiles::SharedTile<Element, kTileRows, D>;
  extern __shared__ __align__(128) unsigned char shared[];
  // Q, then Stages stages of (K, V): later steps' copies run while this step computes.
  const Tile q_tile{reinterpret_cast<Element*>(shared)};
  const auto k_tile_of = [&](int stage) { return Tile{q_tile.data + (1 + 2 * stage) * Tile::kElements}; };
  const auto v_tile_of = [&](int stage) { return Tile{q_tile.data + (2 + 2 * stage) * Tile::kElements}; };

  const WorkTile work = args.tiles[blockIdx.x];
  const DeviceItem item = args.items[work.item];
  const int group = args.group;
  const int query_rows = static_cast<int>(item.row_end - item.row_begin) * group;
  const int tile_rows = min(kTileRows, query_rows - static_cast<int>(work.m_begin));
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  // A narrow tile (at most 16 query rows: decode without sharing, small GQA groups) splits each
  // 64-position step over the 4 warps instead of the rows, and combines their states at the end;
  // a wide tile gives each warp 16 rows, and warps past the last query row only copy.
  const bool narrow = tile_rows <= 16;
  const int row0 = narrow ? 0 : warp * 16;
  const bool computes = narrow || row0 < tile_rows;

  // Query row m of the item is sequence row item.row_begin + m / group, q head kv_head·group + m % group.
  const auto* q = static_cast<const Element*>(args.q);
  copy_rows_async(q_tile, tile_rows, kTileRows, [&](int r) {
    const int m = static_cast<int>(work.m_begin) + r;
    const std::uint32_t batch = args.row_to_batch[item.row_begin + m / group];
    const int head = static_cast<int>(work.kv_head) * group + m % group;
    return q + (static_cast<std::int64_t>(batch) * args.q_heads + head) * D;
  });

  const auto* k_head = static_cast<const Element*>(args.k_pool) + work.kv_head * args.head_stride;
  const auto* v_head = static_cast<const Element*>(args.v_pool) + work.kv_head * args.head_stride;
  auto copy_step = [&](const KvPiece& p, int start, int stage) {
    const int tokens = min(kTileTokens, p.end - start);
    const int fill = (tokens + 15) / 16 * 16;
    const std::int64_t base = p.chunk * args.chunk_stride + static_cast<std::int64_t>(start) * D;
    copy_rows_async(k_tile_of(stage), tokens, fill, [&](int t) { return k_head + base + static_cast<std::int64_t>(t) * D; });
    copy_rows_async(v_tile_of(stage), tokens, fill, [&](int t) { return v_head + base + static_cast<std::int64_t>(t) * D; });
  };
  auto advance = [&](KvCursor& cursor, KvPiece& piece) {
    cursor.start += kTileTokens;
    if (cursor.start >= piece.end && ++cursor.piece < item.piece_end) {
      piece = args.pieces[cursor.piece];
      cursor.start = piece.begin;
    }
  };

  // The copy cursor runs Stages - 1 steps ahead of the compute cursor; one commit group per step
  // (empty past the end) keeps cp_async_wait's count uniform.
  KvPiece piece = args.pieces[item.piece_begin];
  KvCursor cursor{item.piece_begin, piece.begin};
  KvPiece load_piece = piece;
  KvCursor load_cursor = cursor;
#pragma unroll
  for (int stage = 0; stage < Stages - 1; ++stage) {
    if (load_cursor.piece < item.piece_end) {
      copy_step(load_piece, load_cursor.start, stage);
      advance(load_cursor, load_piece);
    }
    cute::cp_async_fence();
  }

  tiles::Accumulator o[D / 8] = {};
  float running_max[2] = {-INFINITY, -INFINITY};  // rows lane/4 and lane/4 + 8, log2 domain
  float running_sum[2] = {0.0f, 0.0f};            // this lane's share; reduced at the end

  for (int step = 0; cursor.piece < item.piece_end; ++step) {
    const int stage = step % Stages;
    const int tokens = min(kTileTokens, piece.end - cursor.start);
    const int blocks16 = (tokens + 15) / 16;
    // The 16-position blocks and positions this warp computes: all of them, or its quarter.
    const int block_begin = narrow ? warp : 0;
    const int block_end = narrow ? min(blocks16, warp + 1) : blocks16;
    const int column_begin = 16 * block_begin;
    const int column_end = min(tokens, 16 * block_end);
    if (load_cursor.piece < item.piece_end) {
      copy_step(load_piece, load_cursor.start, (step + Stages - 1) % Stages);
      advance(load_cursor, load_piece);
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

      // Online softmax: scale, mask positions past the piece, rescale what came before.
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float tile_max = -INFINITY;
#pragma unroll
        for (int n = 0; n < kTileTokens / 8; ++n) {
#pragma unroll
          for (int e = 2 * h; e < 2 * h + 2; ++e) {
            const int column = n * 8 + 2 * (lane % 4) + e % 2;
            s[n][e] = column >= column_begin && column < column_end ? s[n][e] * args.scale_log2 : -INFINITY;
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
    advance(cursor, piece);
  }

  float sum[2] = {tiles::row_sum(running_sum[0]), tiles::row_sum(running_sum[1])};
  if (narrow) combine_warps<D>(reinterpret_cast<float*>(q_tile.data + Tile::kElements), o, running_max, sum);

  // Normalise and store the states of the warp's valid rows (warp 0's, for a narrow tile).
  constexpr float kLn2 = 0.6931471805599453f;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = static_cast<int>(work.m_begin) + row0 + lane / 4 + 8 * h;
    if (m >= query_rows || (narrow && warp != 0)) continue;
    const std::uint32_t state = item.state_begin + static_cast<std::uint32_t>(m / group);
    const int head = static_cast<int>(work.kv_head) * group + m % group;
    const std::int64_t state_head = static_cast<std::int64_t>(state) * args.q_heads + head;
    const float inverse = 1.0f / sum[h];
    float* o_row = args.state_o + state_head * D;
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      *reinterpret_cast<float2*>(o_row + d * 8 + 2 * (lane % 4)) = make_float2(o[d][2 * h] * inverse, o[d][2 * h + 1] * inverse);
    }
    if (lane % 4 == 0) {
      args.state_lse[state_head] = (running_max[h] + log2f(sum[h])) * kLn2;
      if (args.state_max != nullptr) args.state_max[state_head] = running_max[h] * kLn2;
    }
  }
}

struct MergeArgs {
  const std::uint32_t* merge_begin;
  const std::uint32_t* merge_states;
  const std::uint32_t* row_to_batch;
  const float* state_o;
  const float* state_lse;
  void* out;         // [batch, q_heads, head_dim]
  float* lse;        // [batch, q_heads] or null
  int q_heads;
  int head_dim;
};

__device__ void store_output(float* out, float value) { *out = value; }
__device__ void store_output(__nv_bfloat16* out, float value) { *out = __float2bfloat16_rn(value); }
__device__ void store_output(__half* out, float value) { *out = __float2half_rn(value); }

// One block per (row, q head), one thread per 4 dims: merges the row's states in plan order.
template <typename Out>
__global__ void merge_kernel(const MergeArgs args) {
  const std::uint32_t row = blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  const int dim = 4 * static_cast<int>(threadIdx.x);
  StateMerger merger;
  float4 accumulated = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (std::uint32_t m = args.merge_begin[row]; m < args.merge_begin[row + 1]; ++m) {
    const std::int64_t state_head = static_cast<std::int64_t>(args.merge_states[m]) * args.q_heads + head;
    const StateMerger::Weights weights = merger.add(args.state_lse[state_head]);
    const float4 part = *reinterpret_cast<const float4*>(args.state_o + state_head * args.head_dim + dim);
    accumulated.x = accumulated.x * weights.previous + part.x * weights.part;
    accumulated.y = accumulated.y * weights.previous + part.y * weights.part;
    accumulated.z = accumulated.z * weights.previous + part.z * weights.part;
    accumulated.w = accumulated.w * weights.previous + part.w * weights.part;
  }
  const float inverse = merger.inverse_weight();
  const std::int64_t out_head = static_cast<std::int64_t>(args.row_to_batch[row]) * args.q_heads + head;
  Out* out = static_cast<Out*>(args.out) + out_head * args.head_dim + dim;
  store_output(out + 0, accumulated.x * inverse);
  store_output(out + 1, accumulated.y * inverse);
  store_output(out + 2, accumulated.z * inverse);
  store_output(out + 3, accumulated.w * inverse);
  if (threadIdx.x == 0 && args.lse != nullptr) args.lse[out_head] = merger.merged_lse();
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, "cuda backend: " + message); }

// A host vector's contents in a new device allocation.
template <typename T>
cuda_memory::DeviceAllocation upload(const std::vector<T>& values) {
  cuda_memory::DeviceAllocation allocation(values.size() * sizeof(T));
  cuda_memory::copy_to_device(allocation.data(), values.data(), values.size() * sizeof(T));
  return allocation;
}

template <typename Element, int D>
void launch_partial_states(const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream) {
  constexpr int kSharedBytes = (1 + 2 * kStages<D>) * kTileRows * D * static_cast<int>(sizeof(Element));  // Q + stages × (K, V)
  // Per launch, not once per process: the limit belongs to the current device.
  CHUNKTREE_CUDA_CHECK(
      cudaFuncSetAttribute(partial_states_kernel<Element, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBytes));
  partial_states_kernel<Element, D><<<tiles, kThreads, kSharedBytes, stream>>>(args);
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
}

template <typename Element>
void launch_partial_states(int head_dim, const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream) {
  switch (head_dim) {
    case 64: return launch_partial_states<Element, 64>(args, tiles, stream);
    case 128: return launch_partial_states<Element, 128>(args, tiles, stream);
    case 256: return launch_partial_states<Element, 256>(args, tiles, stream);
  }
  fail(ErrorCode::unsupported, "head_dim " + std::to_string(head_dim) + " is not 64, 128 or 256");
}

}  // namespace

namespace cuda {

struct DevicePlan::Impl {
  Plan plan;
  AttentionParams params;
  std::uint32_t num_tiles = 0;
  cuda_memory::DeviceAllocation tiles, items, pieces, row_to_batch, merge_begin, merge_states;
  cuda_memory::DeviceAllocation state_o, state_lse, state_max;
};

DevicePlan::DevicePlan(const PrefixCache& cache, const Plan& plan, const AttentionParams& params)
    : impl_(std::make_unique<Impl>()) {
  const CacheConfig& config = cache.config();
  if (config.device != Device::cuda) fail(ErrorCode::invalid_argument, "the cache lives on the CPU; use the CPU backend");
  if (!plan.is_current(cache, plan.batch)) fail(ErrorCode::invalid_argument, "the plan is stale: the cache changed after it was made; make a new plan");
  if (plan.queries_per_seq != 1) fail(ErrorCode::unsupported, "plans with several query tokens per sequence are not supported yet");
  Impl& p = *impl_;
  p.plan = plan;
  p.params = params;
  if (p.params.num_q_heads == 0) p.params.num_q_heads = config.num_kv_heads;
  if (p.params.num_q_heads < 1 || p.params.num_q_heads % config.num_kv_heads != 0) {
    fail(ErrorCode::invalid_argument, "num_q_heads (" + std::to_string(p.params.num_q_heads) +
                                          ") must be a positive multiple of the cache's kv heads (" +
                                          std::to_string(config.num_kv_heads) + ")");
  }
  if (p.params.scale == 0.0f) p.params.scale = 1.0f / std::sqrt(static_cast<float>(config.head_dim));
  if (!std::isfinite(p.params.scale)) fail(ErrorCode::invalid_argument, "scale must be finite");

  const std::uint32_t group = static_cast<std::uint32_t>(p.params.num_q_heads / config.num_kv_heads);
  std::vector<DeviceItem> items;
  std::vector<WorkTile> tiles;
  for (std::uint32_t i = 0; i < plan.items.size(); ++i) {
    const WorkItem& item = plan.items[i];
    items.push_back(DeviceItem{item.piece_begin, item.piece_end, item.row_begin, item.row_end, item.state_begin});
    const std::uint32_t query_rows = (item.row_end - item.row_begin) * group;
    for (std::uint32_t kv_head = 0; kv_head < static_cast<std::uint32_t>(config.num_kv_heads); ++kv_head) {
      for (std::uint32_t m = 0; m < query_rows; m += kTileRows) tiles.push_back(WorkTile{i, kv_head, m});
    }
  }
  p.num_tiles = static_cast<std::uint32_t>(tiles.size());
  p.tiles = upload(tiles);
  p.items = upload(items);
  p.pieces = upload(plan.pieces);
  p.row_to_batch = upload(plan.row_to_batch);
  p.merge_begin = upload(plan.merge_begin);
  p.merge_states = upload(plan.merge_states);
  const std::size_t state_heads = static_cast<std::size_t>(plan.num_states) * static_cast<std::size_t>(p.params.num_q_heads);
  p.state_o = cuda_memory::DeviceAllocation(state_heads * static_cast<std::size_t>(config.head_dim) * sizeof(float));
  p.state_lse = cuda_memory::DeviceAllocation(state_heads * sizeof(float));
  p.state_max = cuda_memory::DeviceAllocation(state_heads * sizeof(float));
}

DevicePlan::~DevicePlan() = default;
DevicePlan::DevicePlan(DevicePlan&&) noexcept = default;
DevicePlan& DevicePlan::operator=(DevicePlan&&) noexcept = default;
const Plan& DevicePlan::plan() const { return impl_->plan; }
const AttentionParams& DevicePlan::params() const { return impl_->params; }

namespace {

void check_and_compute_states(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q,
                              bool with_max, cudaStream_t stream) {
  const DevicePlan::Impl& p = device_plan.impl();
  const CacheConfig& config = cache.config();
  if (config.device != Device::cuda) fail(ErrorCode::invalid_argument, "the cache lives on the CPU; use the CPU backend");
  if (p.plan.tree_version != cache.version()) {
    fail(ErrorCode::invalid_argument, "the plan is stale: the cache changed after it was made; make a new plan");
  }
  const PoolView pool = cache.pool(layer);  // checks the layer
  const auto batch = static_cast<std::int64_t>(p.plan.batch.size());
  expect_tensor(q, "q", {config.dtype}, Device::cuda, {batch, p.params.num_q_heads, config.head_dim});
  if (batch == 0) return;
  cuda_memory::expect_device_pointer(q.data, "q");
  if (reinterpret_cast<std::uintptr_t>(q.data) % 16 != 0) {
    fail(ErrorCode::invalid_argument, "q must be 16-byte aligned (the kernel copies rows in 16-byte pieces); pass the start of an allocation");
  }

  PartialArgs args{};
  args.tiles = static_cast<const WorkTile*>(p.tiles.data());
  args.items = static_cast<const DeviceItem*>(p.items.data());
  args.pieces = static_cast<const KvPiece*>(p.pieces.data());
  args.row_to_batch = static_cast<const std::uint32_t*>(p.row_to_batch.data());
  args.q = q.data;
  args.k_pool = pool.k;
  args.v_pool = pool.v;
  args.chunk_stride = pool.chunk_stride;
  args.head_stride = pool.head_stride;
  args.state_o = static_cast<float*>(p.state_o.data());
  args.state_lse = static_cast<float*>(p.state_lse.data());
  args.state_max = with_max ? static_cast<float*>(p.state_max.data()) : nullptr;
  args.q_heads = p.params.num_q_heads;
  args.group = p.params.num_q_heads / config.num_kv_heads;
  args.scale_log2 = p.params.scale * 1.4426950408889634f;
  if (config.dtype == DType::bf16) {
    launch_partial_states<__nv_bfloat16>(config.head_dim, args, p.num_tiles, stream);
  } else {
    launch_partial_states<__half>(config.head_dim, args, p.num_tiles, stream);
  }
}

}  // namespace

PlanOptions suggest_plan_options(const PrefixCache& cache, std::span<const SeqId> batch, const AttentionParams& params,
                                 PlanOptions options) {
  options.max_item_tokens = 0;
  const Plan whole = make_plan(cache, batch, options);
  const CacheConfig& config = cache.config();
  const int q_heads = params.num_q_heads == 0 ? config.num_kv_heads : params.num_q_heads;
  const std::int64_t group = std::max(1, q_heads / config.num_kv_heads);
  int device = 0;
  int multiprocessors = 0;
  CHUNKTREE_CUDA_CHECK(cudaGetDevice(&device));
  CHUNKTREE_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  const std::int64_t wanted_tiles = 4 * static_cast<std::int64_t>(multiprocessors);  // two waves of two CTAs per SM

  // Work in tile-tokens (a 64-row tile streaming one KV position, per kv head). Cutting items to
  // about the average a CTA should get keeps the longest one from setting the pace alone.
  std::int64_t longest = 0;
  std::int64_t tile_tokens = 0;
  for (const WorkItem& item : whole.items) {
    longest = std::max(longest, item.tokens);
    tile_tokens += ((item.row_end - item.row_begin) * group + kTileRows - 1) / kTileRows * item.tokens;
  }
  const std::int64_t per_tile = tile_tokens * config.num_kv_heads / wanted_tiles;
  std::int64_t split = 128;
  while (split * 2 <= per_tile) split *= 2;
  options.max_item_tokens = split >= longest ? 0 : std::max<std::int64_t>(split, config.chunk_size);
  return options;
}

void attend(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q, const TensorView& out,
            const TensorView& lse, void* stream_handle) {
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const DevicePlan::Impl& p = device_plan.impl();
  const int head_dim = cache.config().head_dim;
  const auto batch = static_cast<std::int64_t>(p.plan.batch.size());
  expect_tensor(out, "out", {DType::f32, DType::f16, DType::bf16}, Device::cuda, {batch, p.params.num_q_heads, head_dim});
  if (lse.data != nullptr) expect_tensor(lse, "lse", {DType::f32}, Device::cuda, {batch, p.params.num_q_heads});
  check_and_compute_states(cache, device_plan, layer, q, /*with_max=*/false, stream);
  if (batch == 0) return;
  cuda_memory::expect_device_pointer(out.data, "out");
  if (lse.data != nullptr) cuda_memory::expect_device_pointer(lse.data, "lse");

  MergeArgs args{};
  args.merge_begin = static_cast<const std::uint32_t*>(p.merge_begin.data());
  args.merge_states = static_cast<const std::uint32_t*>(p.merge_states.data());
  args.row_to_batch = static_cast<const std::uint32_t*>(p.row_to_batch.data());
  args.state_o = static_cast<const float*>(p.state_o.data());
  args.state_lse = static_cast<const float*>(p.state_lse.data());
  args.out = out.data;
  args.lse = static_cast<float*>(lse.data);
  args.q_heads = p.params.num_q_heads;
  args.head_dim = head_dim;
  const dim3 grid(p.plan.num_rows(), static_cast<unsigned>(p.params.num_q_heads));
  const auto threads = static_cast<unsigned>(head_dim / 4);
  switch (out.dtype) {
    case DType::f32: merge_kernel<float><<<grid, threads, 0, stream>>>(args); break;
    case DType::bf16: merge_kernel<__nv_bfloat16><<<grid, threads, 0, stream>>>(args); break;
    case DType::f16: merge_kernel<__half><<<grid, threads, 0, stream>>>(args); break;
  }
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
}

PartialStates partial_states(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q) {
  check_and_compute_states(cache, device_plan, layer, q, /*with_max=*/true, nullptr);
  CHUNKTREE_CUDA_CHECK(cudaDeviceSynchronize());
  const DevicePlan::Impl& p = device_plan.impl();
  PartialStates states;
  states.num_q_heads = p.params.num_q_heads;
  states.head_dim = cache.config().head_dim;
  states.o.resize(p.state_o.bytes() / sizeof(float));
  states.lse.resize(p.state_lse.bytes() / sizeof(float));
  states.max.resize(p.state_max.bytes() / sizeof(float));
  cuda_memory::copy_to_host(states.o.data(), p.state_o.data(), p.state_o.bytes());
  cuda_memory::copy_to_host(states.lse.data(), p.state_lse.data(), p.state_lse.bytes());
  cuda_memory::copy_to_host(states.max.data(), p.state_max.data(), p.state_max.bytes());
  return states;
}

}  // namespace cuda
}  // namespace chunktree
