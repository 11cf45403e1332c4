// The CUDA backend's host side: DevicePlan turns a plan into work tiles for the two partial-state
// kernels (wgmma tiles of 128 query rows for wide items, mma.sync tiles of 64 for the rest), and
// attend() runs them, then merges each row's states in plan order (src/cuda/merge_rows.cu).
//
// Query rows are an item's rows × query tokens × the GQA group, so a shared span's rows and heads form the M
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
#include "cuda/check.cuh"
#include "cuda/launch_setup.cuh"
#include "cuda/memory.hpp"
#include "cuda/merge_rows.cuh"
#include "cuda/partial_states.cuh"

namespace chunktree {
namespace {

using kernels::PartialArgs;
using kernels::WorkTile;

using kernels::kMmaSyncTileRows;
using kernels::kWgmmaTileRows;

// An item with more query rows per kv head than an mma.sync tile holds runs on wgmma tiles (for
// the head dims that kernel is built for).
bool uses_wgmma(std::int64_t query_rows, int head_dim) {
  return query_rows > kernels::kMmaSyncMaxRows && kernels::wgmma_head_dim(head_dim);
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

// The cost model behind the item split, in µs (docs/KERNEL_NOTES.md, experiments 7, 10 and 12): a
// tile spends `start` on its Q and its state, then `step` per 64 KV positions at head dim 128
// (proportional to the head dim); an mma.sync tile takes one of two slots of an SM, a wgmma tile
// the whole SM; the run takes the longer of the work spread over all slots and the longest tile,
// plus a tail; every state is written once and read once by the merge at HBM speed. The wgmma
// tile is compute-bound (fitted on an H100: its tensor rate is the H200's); the mma.sync tile
// streams K and V at the HBM rate shared by two slots per SM (H200: 4.47 TB/s / 264 slots moves a
// 32 KiB step in 1.9 µs). The tail is half a tile for wgmma tiles, and small for mma.sync tiles,
// which speed up when they run alone at the end.
struct TileCost {
  double step;
  double start;
  double tail;
  double slots;  // of the two per SM
};
constexpr TileCost kWgmmaCost{2.0, 2.0, 0.5, 2.0};
constexpr TileCost kMmaSyncCost{1.9, 3.0, 0.1, 1.0};
constexpr double kStateBytesPerMicro = 3.0e6;

// One tile's time: its start, then its steps of 64 positions.
double tile_micros(const TileCost& cost, std::int64_t tokens, int head_dim) {
  return cost.start + static_cast<double>((tokens + 63) / 64) * cost.step * head_dim / 128.0;
}

// An item as the cost model sees it.
struct ItemSize {
  std::int64_t rows;
  std::int64_t tokens;
};

struct SplitShape {
  int q_heads;
  int kv_heads;
  int head_dim;
  int queries;
  std::int64_t min_split;  // items are cut at multiples of this (a chunk), or not at all
};

double estimated_micros(const std::vector<ItemSize>& items, std::int64_t split, const SplitShape& shape, std::int64_t slots) {
  const std::int64_t group = shape.q_heads / shape.kv_heads;
  double total = 0.0;
  double longest_tile = 0.0;
  double tail = 0.0;
  double state_bytes = 0.0;
  for (const ItemSize& item : items) {
    const std::int64_t query_rows = item.rows * shape.queries * group;
    const bool wgmma = uses_wgmma(query_rows, shape.head_dim);
    const TileCost& cost = wgmma ? kWgmmaCost : kMmaSyncCost;
    const std::int64_t tile_rows = wgmma ? kWgmmaTileRows : kMmaSyncTileRows;
    const std::int64_t parts = split == 0 ? 1 : (item.tokens + split - 1) / split;
    const std::int64_t part_tokens = (item.tokens + parts - 1) / parts;
    const double tile = tile_micros(cost, part_tokens, shape.head_dim);
    const std::int64_t tiles = (query_rows + tile_rows - 1) / tile_rows * shape.kv_heads * parts;
    total += static_cast<double>(tiles) * tile * cost.slots;
    longest_tile = std::max(longest_tile, tile);
    tail = std::max(tail, cost.tail * tile);
    state_bytes += 2.0 * static_cast<double>(item.rows * parts * shape.queries * shape.q_heads * shape.head_dim) * sizeof(float);
  }
  return std::max(total / static_cast<double>(slots), longest_tile) + tail + state_bytes / kStateBytesPerMicro;
}

// Whole items (0) or the cheapest power of two from 64 tokens (one stage of the mma.sync tile; at
// least min_split) below the longest item.
std::int64_t cheapest_split(const std::vector<ItemSize>& items, const SplitShape& shape) {
  const std::int64_t slots = 2 * static_cast<std::int64_t>(kernels::multiprocessor_count());  // two mma.sync tiles or one wgmma tile per SM
  std::int64_t longest = 0;
  for (const ItemSize& item : items) longest = std::max(longest, item.tokens);
  std::int64_t best_split = 0;
  double best = estimated_micros(items, 0, shape, slots);
  for (std::int64_t split = 64; split < longest; split *= 2) {
    const std::int64_t candidate = std::max(split, shape.min_split);
    const double micros = estimated_micros(items, candidate, shape, slots);
    if (micros < best) {
      best = micros;
      best_split = candidate;
    }
  }
  return best_split;
}

// A Work on the device: its tiles for the two kernels, its lists, and scratch for its states.
// Serves one run at a time (the scratch and the second stream are shared by the launches).
class DeviceWork {
 public:
  DeviceWork(const work::Work& w, int q_heads, int kv_heads, int head_dim)
      : q_heads_(q_heads), group_(q_heads / kv_heads), head_dim_(head_dim), queries_(w.queries_per_seq), rows_(w.num_rows()) {
    std::vector<WorkTile> wgmma_tiles;
    std::vector<WorkTile> mma_sync_tiles;
    for (std::uint32_t i = 0; i < w.items.size(); ++i) {
      const work::Item& item = w.items[i];
      const std::uint32_t query_rows = (item.row_end - item.row_begin) * static_cast<std::uint32_t>(queries_ * group_);
      const bool wgmma = uses_wgmma(query_rows, head_dim);
      std::vector<WorkTile>& tiles = wgmma ? wgmma_tiles : mma_sync_tiles;
      const std::uint32_t tile_rows = wgmma ? kWgmmaTileRows : kMmaSyncTileRows;
      for (std::uint32_t kv_head = 0; kv_head < static_cast<std::uint32_t>(kv_heads); ++kv_head) {
        for (std::uint32_t m = 0; m < query_rows; m += tile_rows) tiles.push_back(WorkTile{i, kv_head, m});
      }
    }
    // Longest items first: the last tiles to start are the short ones, so the grid ends evenly.
    const auto longest_first = [&](const WorkTile& a, const WorkTile& b) { return w.items[a.item].tokens > w.items[b.item].tokens; };
    std::stable_sort(wgmma_tiles.begin(), wgmma_tiles.end(), longest_first);
    std::stable_sort(mma_sync_tiles.begin(), mma_sync_tiles.end(), longest_first);
    num_wgmma_tiles_ = static_cast<std::uint32_t>(wgmma_tiles.size());
    num_mma_sync_tiles_ = static_cast<std::uint32_t>(mma_sync_tiles.size());
    wgmma_tiles_ = upload(wgmma_tiles);
    mma_sync_tiles_ = upload(mma_sync_tiles);
    if (!wgmma_tiles.empty() && !mma_sync_tiles.empty()) side_ = std::make_unique<ForkedStream>();
    items_ = upload(w.items);
    runs_ = upload(w.runs);
    row_to_batch_ = upload(w.row_to_batch);
    row_limit_ = upload(w.row_limit);
    merge_begin_ = upload(w.merge_begin);
    merge_states_ = upload(w.merge_states);
    one_state_per_row_ = w.merge_states.size() == w.num_rows();
    const std::size_t state_heads = static_cast<std::size_t>(w.num_states) * static_cast<std::size_t>(queries_ * q_heads);
    state_o_ = cuda_memory::DeviceAllocation(state_heads * static_cast<std::size_t>(head_dim) * sizeof(float));
    state_lse_ = cuda_memory::DeviceAllocation(state_heads * sizeof(float));
    state_max_ = cuda_memory::DeviceAllocation(state_heads * sizeof(float));
  }

  // Attention of every row into out (and lse) in the caller's order: the states, then their merge.
  // When every row reads one item, its state is the output and the kernels store it directly.
  void attend(std::uintptr_t k_base, std::uintptr_t v_base, DType dtype, const void* q, float scale, const TensorView& out,
              const TensorView& lse, cudaStream_t stream) const {
    if (rows_ == 0) return;
    PartialArgs args = partial_args(k_base, v_base, q, scale);
    if (one_state_per_row_) {
      args.out = out.data;
      args.out_lse = static_cast<float*>(lse.data);
      args.out_dtype = out.dtype;
      compute_states(args, dtype, stream);
      return;
    }
    compute_states(args, dtype, stream);
    merge(out, lse, stream);
  }

  // Every state of every item with its running max, copied to the host (for tests and checks).
  PartialStates states(std::uintptr_t k_base, std::uintptr_t v_base, DType dtype, const void* q, float scale) const {
    if (rows_ > 0) {
      PartialArgs args = partial_args(k_base, v_base, q, scale);
      args.state_max = static_cast<float*>(state_max_.data());
      compute_states(args, dtype, nullptr);
    }
    CHUNKTREE_CUDA_CHECK(cudaDeviceSynchronize());
    return download_states();
  }

 private:
  // The kernels' arguments for this work; K and V at the bases plus the runs' offsets.
  PartialArgs partial_args(std::uintptr_t k_base, std::uintptr_t v_base, const void* q, float scale) const {
    if (reinterpret_cast<std::uintptr_t>(q) % 16 != 0) {
      fail(ErrorCode::invalid_argument, "q must be 16-byte aligned (the kernels copy rows in 16-byte pieces); pass the start of an allocation");
    }
    PartialArgs args{};
    args.items = static_cast<const work::Item*>(items_.data());
    args.runs = static_cast<const work::KvRun*>(runs_.data());
    args.row_to_batch = static_cast<const std::uint32_t*>(row_to_batch_.data());
    args.row_limit = static_cast<const std::int32_t*>(row_limit_.data());
    args.q = q;
    args.k_base = k_base;
    args.v_base = v_base;
    args.state_o = static_cast<float*>(state_o_.data());
    args.state_lse = static_cast<float*>(state_lse_.data());
    args.q_heads = q_heads_;
    args.group = group_;
    args.queries = queries_;
    args.scale_log2 = scale * 1.4426950408889634f;
    return args;
  }

  // Both kernels' launches: the wgmma tiles on the second stream when there are tiles of both kinds.
  void compute_states(PartialArgs args, DType dtype, cudaStream_t stream) const {
    const bool bf16 = dtype == DType::bf16;
    if (num_wgmma_tiles_ > 0) {
      args.tiles = static_cast<const WorkTile*>(wgmma_tiles_.data());
      args.num_tiles = num_wgmma_tiles_;
      kernels::launch_wgmma_states(bf16, head_dim_, args, side_ ? side_->fork(stream) : stream);
    }
    if (num_mma_sync_tiles_ > 0) {
      args.tiles = static_cast<const WorkTile*>(mma_sync_tiles_.data());
      args.num_tiles = num_mma_sync_tiles_;
      const auto grid = num_wgmma_tiles_ > 0 ? kernels::MmaSyncGrid::one_per_tile : kernels::MmaSyncGrid::persistent;
      kernels::launch_mma_sync_states(bf16, head_dim_, args, grid, stream);
    }
    if (side_) side_->join(stream);
  }

  // Each row's states merged per query token into out (and lse), in the caller's order.
  void merge(const TensorView& out, const TensorView& lse, cudaStream_t stream) const {
    if (rows_ == 0) return;
    kernels::RowMergeArgs args{};
    args.merge_begin = static_cast<const std::uint32_t*>(merge_begin_.data());
    args.merge_states = static_cast<const std::uint32_t*>(merge_states_.data());
    args.row_to_batch = static_cast<const std::uint32_t*>(row_to_batch_.data());
    args.state_o = static_cast<const float*>(state_o_.data());
    args.state_lse = static_cast<const float*>(state_lse_.data());
    args.out = out.data;
    args.lse = static_cast<float*>(lse.data);
    args.q_heads = q_heads_;
    args.queries = queries_;
    kernels::launch_merge_rows(args, rows_, head_dim_, out.dtype, stream);
  }

  PartialStates download_states() const {
    PartialStates states;
    states.num_q_heads = q_heads_;
    states.head_dim = head_dim_;
    states.o.resize(state_o_.bytes() / sizeof(float));
    states.lse.resize(state_lse_.bytes() / sizeof(float));
    states.max.resize(state_max_.bytes() / sizeof(float));
    cuda_memory::copy_to_host(states.o.data(), state_o_.data(), state_o_.bytes());
    cuda_memory::copy_to_host(states.lse.data(), state_lse_.data(), state_lse_.bytes());
    cuda_memory::copy_to_host(states.max.data(), state_max_.data(), state_max_.bytes());
    return states;
  }

 private:
  int q_heads_;
  int group_;
  int head_dim_;
  int queries_;
  std::uint32_t rows_;
  std::uint32_t num_wgmma_tiles_ = 0;
  std::uint32_t num_mma_sync_tiles_ = 0;
  bool one_state_per_row_ = false;
  cuda_memory::DeviceAllocation wgmma_tiles_, mma_sync_tiles_, items_, runs_, row_to_batch_, row_limit_, merge_begin_, merge_states_;
  cuda_memory::DeviceAllocation state_o_, state_lse_, state_max_;
  std::unique_ptr<ForkedStream> side_;  // only when the work has tiles of both kinds
};

int resolved_q_heads(const AttentionParams& params, int kv_heads) {
  const int q_heads = params.num_q_heads == 0 ? kv_heads : params.num_q_heads;
  if (q_heads < 1 || q_heads % kv_heads != 0) {
    fail(ErrorCode::invalid_argument, "num_q_heads (" + std::to_string(q_heads) + ") must be a positive multiple of the cache's kv heads (" +
                                          std::to_string(kv_heads) + ")");
  }
  return q_heads;
}

float resolved_scale(const AttentionParams& params, int head_dim) {
  const float scale = params.scale == 0.0f ? 1.0f / std::sqrt(static_cast<float>(head_dim)) : params.scale;
  if (!std::isfinite(scale)) fail(ErrorCode::invalid_argument, "scale must be finite");
  return scale;
}

void expect_outputs(const TensorView& out, const TensorView& lse, std::int64_t tokens, int q_heads, int head_dim) {
  expect_tensor(out, "out", {DType::f32, DType::f16, DType::bf16}, Device::cuda, {tokens, q_heads, head_dim});
  if (lse.data != nullptr) expect_tensor(lse, "lse", {DType::f32}, Device::cuda, {tokens, q_heads});
  if (tokens == 0) return;
  cuda_memory::expect_device_pointer(out.data, "out");
  if (reinterpret_cast<std::uintptr_t>(out.data) % (2 * dtype_size(out.dtype)) != 0) {
    fail(ErrorCode::invalid_argument, "out must be aligned to two of its elements (the kernels store pairs); pass the start of an allocation");
  }
  if (lse.data != nullptr) cuda_memory::expect_device_pointer(lse.data, "lse");
}

}  // namespace

namespace cuda {

struct DevicePlan::Impl {
  Plan plan;
  AttentionParams params;
  DeviceWork work;
};

DevicePlan::DevicePlan(const PrefixCache& cache, const Plan& plan, const AttentionParams& params) {
  const PrefixCache::ReadGuard reading(cache, "cuda::DevicePlan");  // the tree must not change while its work is built
  const CacheConfig& config = cache.config();
  if (config.device != Device::cuda) fail(ErrorCode::invalid_argument, "the cache lives on the CPU; use the CPU backend");
  if (!plan.is_current(cache, plan.batch)) fail(ErrorCode::invalid_argument, "the plan is stale: the cache changed after it was made; make a new plan");
  AttentionParams resolved = params;
  resolved.num_q_heads = resolved_q_heads(params, config.num_kv_heads);
  resolved.scale = resolved_scale(params, config.head_dim);
  impl_ = std::make_unique<Impl>(Impl{plan, resolved, DeviceWork(work::from_plan(cache, plan), resolved.num_q_heads, config.num_kv_heads, config.head_dim)});
}

DevicePlan::~DevicePlan() = default;
DevicePlan::DevicePlan(DevicePlan&&) noexcept = default;
DevicePlan& DevicePlan::operator=(DevicePlan&&) noexcept = default;
const Plan& DevicePlan::plan() const { return impl_->plan; }
const AttentionParams& DevicePlan::params() const { return impl_->params; }

namespace {

// Checks a cache call's cache, plan, layer and q (before its outputs: q is what callers get wrong
// first); returns the layer's pools.
PoolView check_call(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q) {
  const DevicePlan::Impl& p = device_plan.impl();
  const CacheConfig& config = cache.config();
  if (config.device != Device::cuda) fail(ErrorCode::invalid_argument, "the cache lives on the CPU; use the CPU backend");
  if (p.plan.tree_version != cache.version()) {
    fail(ErrorCode::invalid_argument, "the plan is stale: the cache changed after it was made; make a new plan");
  }
  const PoolView pool = cache.pool(layer);  // checks the layer
  const std::int64_t tokens = static_cast<std::int64_t>(p.plan.batch.size()) * p.plan.queries_per_seq;
  expect_tensor(q, "q", {config.dtype}, Device::cuda, {tokens, p.params.num_q_heads, config.head_dim});
  if (tokens > 0) cuda_memory::expect_device_pointer(q.data, "q");
  return pool;
}

}  // namespace

PlanOptions suggest_plan_options(const PrefixCache& cache, std::span<const SeqId> batch, const AttentionParams& params,
                                 PlanOptions options) {
  options.max_item_tokens = 0;
  const Plan whole = make_plan(cache, batch, options);
  const CacheConfig& config = cache.config();
  std::vector<ItemSize> sizes;
  for (const WorkItem& item : whole.items) sizes.push_back(ItemSize{item.row_end - item.row_begin, item.tokens});
  const SplitShape shape{resolved_q_heads(params, config.num_kv_heads), config.num_kv_heads, config.head_dim, options.queries_per_seq,
                         config.chunk_size};
  options.max_item_tokens = cheapest_split(sizes, shape);
  return options;
}

void attend(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q, const TensorView& out,
            const TensorView& lse, void* stream_handle) {
  // No mutation while the host checks and launches run (the kernels run on after it returns).
  const PrefixCache::ReadGuard reading(cache, "cuda::attend");
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const DevicePlan::Impl& p = device_plan.impl();
  const std::int64_t tokens = static_cast<std::int64_t>(p.plan.batch.size()) * p.plan.queries_per_seq;
  const PoolView pool = check_call(cache, device_plan, layer, q);
  expect_outputs(out, lse, tokens, p.params.num_q_heads, cache.config().head_dim);
  p.work.attend(reinterpret_cast<std::uintptr_t>(pool.k), reinterpret_cast<std::uintptr_t>(pool.v), pool.dtype, q.data, p.params.scale, out,
                lse, stream);
}

PartialStates partial_states(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q) {
  const PrefixCache::ReadGuard reading(cache, "cuda::partial_states");
  const PoolView pool = check_call(cache, device_plan, layer, q);
  const DevicePlan::Impl& p = device_plan.impl();
  return p.work.states(reinterpret_cast<std::uintptr_t>(pool.k), reinterpret_cast<std::uintptr_t>(pool.v), pool.dtype, q.data, p.params.scale);
}

struct LevelsPlan::Impl {
  work::LevelsShape shape;
  int queries;
  float scale;
  DeviceWork work;
};

LevelsPlan::LevelsPlan(const Levels& levels, const ConstTensorView& q, const AttentionParams& params) {
  const work::LevelsShape shape = work::check_levels(levels, q, Device::cuda, "cuda backend");
  cuda_memory::require_current_hopper();
  if (shape.dtype != DType::bf16 && shape.dtype != DType::f16) {
    fail(ErrorCode::invalid_argument, "the KV is " + std::string(to_string(shape.dtype)) + "; the CUDA backend runs bf16 or f16");
  }
  const auto check_pointer = [](const void* pointer, const std::string& what) {
    cuda_memory::expect_device_pointer(pointer, what.c_str());
    if (reinterpret_cast<std::uintptr_t>(pointer) % 16 != 0) fail(ErrorCode::invalid_argument, what + " must be 16-byte aligned");
  };
  for (std::size_t l = 0; l < levels.levels.size(); ++l) {
    for (std::size_t i = 0; i < levels.levels[l].size(); ++i) {
      const std::string what = "level " + std::to_string(l) + " segment " + std::to_string(i);
      check_pointer(levels.levels[l][i].kv.k.data, what + ".k");
      check_pointer(levels.levels[l][i].kv.v.data, what + ".v");
    }
  }
  for (std::size_t s = 0; s < levels.own.size(); ++s) {
    if (levels.own[s].length == 0) continue;
    check_pointer(levels.own[s].k.data, "own[" + std::to_string(s) + "].k");
    check_pointer(levels.own[s].v.data, "own[" + std::to_string(s) + "].v");
  }
  std::vector<ItemSize> sizes;
  for (const work::Item& item : work::from_levels(levels, shape, 0).items) sizes.push_back(ItemSize{item.row_end - item.row_begin, item.tokens});
  const std::int64_t split = cheapest_split(sizes, SplitShape{shape.q_heads, shape.kv_heads, shape.head_dim, levels.queries_per_seq, 0});
  impl_ = std::make_unique<Impl>(Impl{shape, levels.queries_per_seq, resolved_scale(params, shape.head_dim),
                                      DeviceWork(work::from_levels(levels, shape, split), shape.q_heads, shape.kv_heads, shape.head_dim)});
}

LevelsPlan::~LevelsPlan() = default;
LevelsPlan::LevelsPlan(LevelsPlan&&) noexcept = default;
LevelsPlan& LevelsPlan::operator=(LevelsPlan&&) noexcept = default;

void attend_levels(const LevelsPlan& plan, const ConstTensorView& q, const TensorView& out, const TensorView& lse, void* stream_handle) {
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const LevelsPlan::Impl& p = plan.impl();
  const std::int64_t tokens = p.shape.num_seqs * p.queries;
  expect_tensor(q, "q", {p.shape.dtype}, Device::cuda, {tokens, p.shape.q_heads, p.shape.head_dim});
  expect_outputs(out, lse, tokens, p.shape.q_heads, p.shape.head_dim);
  if (tokens == 0) return;
  cuda_memory::expect_device_pointer(q.data, "q");
  p.work.attend(0, 0, p.shape.dtype, q.data, p.scale, out, lse, stream);
}

}  // namespace cuda
}  // namespace chunktree
