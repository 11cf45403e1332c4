// The CUDA backend's host side and merge: DevicePlan turns a plan into work tiles for the two
// partial-state kernels (wgmma tiles of 128 query rows for wide items, mma.sync tiles of 64 for
// the rest), and attend() runs them, then merges each row's states in plan order.
//
// Query rows are an item's rows × the GQA group, so a shared span's rows and heads form the M
// dimension of one product, and a private span's GQA group is packed into rows. A tile streams
// its item's KV through shared memory, across all its chunks, with an online softmax: each KV
// byte of an item is read once per kv head and row tile (docs/DESIGN.md, "CUDA backend").
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
#include "cuda/partial_states.cuh"

namespace chunktree {
namespace {

using kernels::DeviceItem;
using kernels::PartialArgs;
using kernels::WorkTile;

// Query rows per work tile for an item with `query_rows` rows per kv head: the wgmma kernel's 128
// for wide items, the mma.sync kernel's 64 otherwise.
constexpr int kWgmmaTileRows = 128;
constexpr int kMmaSyncTileRows = 64;
bool uses_wgmma(std::int64_t query_rows, int head_dim) {
  return query_rows > kernels::kMmaSyncMaxRows && kernels::wgmma_head_dim(head_dim);
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

// A second stream and the events that fork it from the caller's stream and join it back, so
// that the wgmma tiles run beside the mma.sync tiles (under graph capture: two branches).
class ForkedStream {
 public:
  ForkedStream() {
    try {
      CHUNKTREE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      CHUNKTREE_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
      CHUNKTREE_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~ForkedStream() { destroy(); }
  ForkedStream(const ForkedStream&) = delete;
  ForkedStream& operator=(const ForkedStream&) = delete;

  cudaStream_t fork(cudaStream_t from) {
    CHUNKTREE_CUDA_CHECK(cudaEventRecord(fork_, from));
    CHUNKTREE_CUDA_CHECK(cudaStreamWaitEvent(stream_, fork_));
    return stream_;
  }
  void join(cudaStream_t into) {
    CHUNKTREE_CUDA_CHECK(cudaEventRecord(join_, stream_));
    CHUNKTREE_CUDA_CHECK(cudaStreamWaitEvent(into, join_));
  }

 private:
  void destroy() noexcept {  // errors here have nowhere to go
    if (join_ != nullptr) cudaEventDestroy(join_);
    if (fork_ != nullptr) cudaEventDestroy(fork_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
  cudaEvent_t fork_ = nullptr;
  cudaEvent_t join_ = nullptr;
};

}  // namespace

namespace cuda {

struct DevicePlan::Impl {
  Plan plan;
  AttentionParams params;
  std::uint32_t num_wgmma_tiles = 0;
  std::uint32_t num_mma_sync_tiles = 0;
  cuda_memory::DeviceAllocation wgmma_tiles, mma_sync_tiles, items, pieces, row_to_batch, merge_begin, merge_states;
  cuda_memory::DeviceAllocation state_o, state_lse, state_max;
  std::unique_ptr<ForkedStream> side;  // only when the plan has tiles of both kinds
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
  std::vector<WorkTile> wgmma_tiles;
  std::vector<WorkTile> mma_sync_tiles;
  for (std::uint32_t i = 0; i < plan.items.size(); ++i) {
    const WorkItem& item = plan.items[i];
    items.push_back(DeviceItem{item.piece_begin, item.piece_end, item.row_begin, item.row_end, item.state_begin});
    const std::uint32_t query_rows = (item.row_end - item.row_begin) * group;
    const bool wgmma = uses_wgmma(query_rows, config.head_dim);
    std::vector<WorkTile>& tiles = wgmma ? wgmma_tiles : mma_sync_tiles;
    const std::uint32_t tile_rows = wgmma ? kWgmmaTileRows : kMmaSyncTileRows;
    for (std::uint32_t kv_head = 0; kv_head < static_cast<std::uint32_t>(config.num_kv_heads); ++kv_head) {
      for (std::uint32_t m = 0; m < query_rows; m += tile_rows) tiles.push_back(WorkTile{i, kv_head, m});
    }
  }
  p.num_wgmma_tiles = static_cast<std::uint32_t>(wgmma_tiles.size());
  p.num_mma_sync_tiles = static_cast<std::uint32_t>(mma_sync_tiles.size());
  p.wgmma_tiles = upload(wgmma_tiles);
  if (!wgmma_tiles.empty() && !mma_sync_tiles.empty()) p.side = std::make_unique<ForkedStream>();
  p.mma_sync_tiles = upload(mma_sync_tiles);
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
  const bool bf16 = config.dtype == DType::bf16;
  if (p.num_wgmma_tiles > 0) {
    args.tiles = static_cast<const WorkTile*>(p.wgmma_tiles.data());
    kernels::launch_wgmma_states(bf16, config.head_dim, args, p.num_wgmma_tiles, p.side ? p.side->fork(stream) : stream);
  }
  if (p.num_mma_sync_tiles > 0) {
    args.tiles = static_cast<const WorkTile*>(p.mma_sync_tiles.data());
    kernels::launch_mma_sync_states(bf16, config.head_dim, args, p.num_mma_sync_tiles, stream);
  }
  if (p.side) p.side->join(stream);
}

}  // namespace

namespace {

// The cost model behind suggest_plan_options, in µs, with constants fitted to H100 runs
// (docs/KERNEL_NOTES.md, experiment 7): a tile spends tile_start on its Q and its state, then
// one step per 64 KV positions; two tiles share an SM; the run takes the longer of the work
// spread over all slots and the longest tile, plus a tail; every state is written once and read
// once by the merge at HBM speed. The tail is half a tile for compute-bound wgmma tiles, and
// small for bandwidth-bound mma.sync tiles, which speed up when they run alone at the end.
struct TileCost {
  double step;
  double start;
  double tail;
};
constexpr TileCost kWgmmaCost{4.4, 2.0, 0.5};
constexpr TileCost kMmaSyncCost{3.0, 4.0, 0.1};
constexpr double kStateBytesPerMicro = 3.0e6;

double estimated_micros(const Plan& whole, std::int64_t split, const CacheConfig& config, std::int64_t group, int q_heads,
                        std::int64_t slots) {
  double total = 0.0;
  double longest_tile = 0.0;
  double tail = 0.0;
  double state_bytes = 0.0;
  for (const WorkItem& item : whole.items) {
    const std::int64_t rows = item.row_end - item.row_begin;
    const std::int64_t query_rows = rows * group;
    const bool wgmma = uses_wgmma(query_rows, config.head_dim);
    const TileCost& cost = wgmma ? kWgmmaCost : kMmaSyncCost;
    const std::int64_t tile_rows = wgmma ? kWgmmaTileRows : kMmaSyncTileRows;
    const std::int64_t parts = split == 0 ? 1 : (item.tokens + split - 1) / split;
    const std::int64_t part_tokens = (item.tokens + parts - 1) / parts;
    const double tile = cost.start + static_cast<double>((part_tokens + 63) / 64) * cost.step;
    const std::int64_t tiles = (query_rows + tile_rows - 1) / tile_rows * config.num_kv_heads * parts;
    total += static_cast<double>(tiles) * tile;
    longest_tile = std::max(longest_tile, tile);
    tail = std::max(tail, cost.tail * tile);
    state_bytes += 2.0 * static_cast<double>(rows * parts * q_heads * config.head_dim) * sizeof(float);
  }
  return std::max(total / static_cast<double>(slots), longest_tile) + tail + state_bytes / kStateBytesPerMicro;
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
  const std::int64_t slots = 2 * static_cast<std::int64_t>(multiprocessors);  // both kernels fit two CTAs per SM

  // Try whole spans and every power of two from 128 tokens (at least a chunk) below the longest
  // span; keep the cheapest.
  std::int64_t longest = 0;
  for (const WorkItem& item : whole.items) longest = std::max(longest, item.tokens);
  double best = estimated_micros(whole, 0, config, group, q_heads, slots);
  for (std::int64_t split = 128; split < longest; split *= 2) {
    const std::int64_t candidate = std::max<std::int64_t>(split, config.chunk_size);
    const double micros = estimated_micros(whole, candidate, config, group, q_heads, slots);
    if (micros < best) {
      best = micros;
      options.max_item_tokens = candidate;
    }
  }
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
