// The CUDA backend's API: DevicePlan and LevelsPlan check their inputs, choose the item split
// (a cost model of the kernels) and load their work onto the device (src/cuda/device_work.cu),
// which attend() and attend_levels() then run.
//
// Query rows are an item's rows × query tokens × the GQA group, so a shared span's rows and heads form the M
// dimension of one product, and a private span's GQA group is packed into rows. A tile streams
// its item's KV through shared memory, across all its chunks, with an online softmax: each KV
// byte of an item is read once per kv head and row tile (docs/DESIGN.md, "CUDA backend").
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chunktree/cuda_backend.hpp"
#include "runtime/check.cuh"
#include "runtime/exclusive_call.hpp"
#include "schedule/cost_model.hpp"
#include "cuda/device_work.cuh"
#include "kernels/launch_setup.cuh"
#include "runtime/memory.hpp"
#include "kernels/partial_states.cuh"
#include "schedule/paged.hpp"

namespace chunktree {
namespace {

using cuda_work::DeviceWork;
using cuda_work::Upload;

constexpr const char* kWho = "cuda backend";  // what the messages of this backend's errors start with

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, std::string(kWho) + ": " + message); }

void expect_outputs(const TensorView& out, const TensorView& lse, std::int64_t tokens, int q_heads, int head_dim) {
  work::expect_outputs(out, lse, tokens, q_heads, head_dim, Device::cuda, kWho);
  if (tokens == 0) return;
  cuda_memory::expect_device_pointer(out.data, "out");
  if (reinterpret_cast<std::uintptr_t>(out.data) % (4 * dtype_size(out.dtype)) != 0) {
    fail(ErrorCode::invalid_argument,
         "out must be aligned to four of its elements (the kernels store four at a time); pass the start of an allocation");
  }
  if (lse.data != nullptr) cuda_memory::expect_device_pointer(lse.data, "lse");
}

}  // namespace

namespace cuda {

struct DevicePlan::Impl {
  AttentionParams params;        // resolved
  const void* pool_k = nullptr;  // layer 0's K pool: which cache this DevicePlan serves
  bool loaded = false;           // whether a plan was loaded
  std::uint64_t tree_version = 0;
  std::int64_t query_tokens = 0;  // of the plan loaded last: its batch · queries_per_seq
  DeviceWork work;
  work::Work staged;              // scratch for building a plan's work (its memory reused by the next; half-built after a refusal)
};

namespace {

std::unique_ptr<DevicePlan::Impl> new_device_plan(const PrefixCache& cache, const AttentionParams& params) {
  const CacheConfig& config = cache.config();
  if (config.device != Device::cuda) fail(ErrorCode::invalid_argument, "the cache lives on the CPU; use the CPU backend");
  AttentionParams resolved = params;
  resolved.num_q_heads = work::resolved_q_heads(params.num_q_heads, config.num_kv_heads, kWho);
  resolved.scale = work::resolved_scale(params.scale, config.head_dim, kWho);
  return std::make_unique<DevicePlan::Impl>(
      DevicePlan::Impl{resolved, cache.pool(0).k, false, 0, 0, DeviceWork(resolved.num_q_heads, config.num_kv_heads, config.head_dim), {}});
}

void load_plan(DevicePlan::Impl& p, const PrefixCache& cache, const Plan& plan, Upload upload, cudaStream_t stream) {
  const PrefixCache::ReadGuard reading(cache, "cuda::DevicePlan");  // the tree must not change while its work is built
  if (cache.pool(0).k != p.pool_k) {
    fail(ErrorCode::invalid_argument, "the plan is of another cache than the one this DevicePlan was made for; make a DevicePlan for it");
  }
  if (plan.tree_version != cache.version()) {
    fail(ErrorCode::invalid_argument, work::kStalePlan);
  }
  work::from_plan(cache, plan, p.staged);
  p.work.load(p.staged, upload, stream);
  p.loaded = true;
  p.tree_version = plan.tree_version;
  p.query_tokens = static_cast<std::int64_t>(plan.batch.size()) * plan.queries_per_seq;
}

}  // namespace

DevicePlan::DevicePlan(const PrefixCache& cache, const AttentionParams& params) : impl_(new_device_plan(cache, params)) {}

DevicePlan::DevicePlan(const PrefixCache& cache, const Plan& plan, const AttentionParams& params) : DevicePlan(cache, params) {
  load_plan(*impl_, cache, plan, Upload::one_shot, nullptr);
}

void DevicePlan::update(const PrefixCache& cache, const Plan& plan, void* stream) {
  load_plan(*impl_, cache, plan, Upload::asynchronous, static_cast<cudaStream_t>(stream));
}

DevicePlan::~DevicePlan() = default;
DevicePlan::DevicePlan(DevicePlan&&) noexcept = default;
DevicePlan& DevicePlan::operator=(DevicePlan&&) noexcept = default;
const AttentionParams& DevicePlan::params() const { return impl_->params; }

namespace {

struct CallShape {
  PoolView pool;            // the layer's
  std::int64_t q_tokens;    // the rows of q (and of out and lse): the plan's query tokens, or more
};

// A layer's pools as the kernels read them: the runs' offsets are from its bases.
cuda_work::KvStorage storage_of(const PoolView& pool) {
  return cuda_work::KvStorage{reinterpret_cast<std::uintptr_t>(pool.k), reinterpret_cast<std::uintptr_t>(pool.v), pool.position_stride};
}

// Checks a cache call's cache, plan, layer and q (before its outputs: q is what callers get wrong
// first). An updated DevicePlan runs in the buffers of its largest batch: its q (and out, lse) may
// hold more rows than the plan's query tokens; the first are used.
CallShape check_call(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q) {
  const DevicePlan::Impl& p = device_plan.impl();
  const CacheConfig& config = cache.config();
  if (config.device != Device::cuda) fail(ErrorCode::invalid_argument, "the cache lives on the CPU; use the CPU backend");
  if (!p.loaded) fail(ErrorCode::invalid_argument, "this DevicePlan has no plan yet: update() it with one first");
  if (cache.pool(0).k != p.pool_k) {
    fail(ErrorCode::invalid_argument, "this DevicePlan was made for another cache; make a DevicePlan for this one");
  }
  if (p.tree_version != cache.version()) {
    fail(ErrorCode::invalid_argument, work::kStalePlan);
  }
  const PoolView pool = cache.pool(layer);  // checks the layer
  const std::int64_t rows = p.work.replayable() && !q.shape.empty() ? std::max(q.shape[0], p.query_tokens) : p.query_tokens;
  expect_tensor(q, "q", {config.dtype}, Device::cuda, {rows, p.params.num_q_heads, config.head_dim});
  if (rows > 0) cuda_memory::expect_device_pointer(q.data, "q");
  return CallShape{pool, rows};
}

}  // namespace

PlanOptions plan_options(const PrefixCache& cache, const AttentionParams& params, PlanOptions options) {
  const CacheConfig& config = cache.config();
  options.max_item_tokens = 0;
  const int q_heads = work::resolved_q_heads(params.num_q_heads, config.num_kv_heads, kWho);
  const cost_model::SplitShape shape{q_heads, config.num_kv_heads, config.head_dim, options.queries_per_seq, config.chunk_size};
  options.choose_max_item_tokens = [shape](std::span<const SpanSize> spans) {
    return cost_model::cheapest_split(spans, shape, kernels::multiprocessor_count());
  };
  return options;
}

void attend(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q, const TensorView& out,
            const TensorView& lse, void* stream_handle) {
  // No mutation while the host checks and launches run (the kernels run on after it returns).
  const PrefixCache::ReadGuard reading(cache, "cuda::attend");
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const DevicePlan::Impl& p = device_plan.impl();
  const auto [pool, rows] = check_call(cache, device_plan, layer, q);
  expect_outputs(out, lse, rows, p.params.num_q_heads, cache.config().head_dim);
  p.work.attend(storage_of(pool), pool.dtype, q.data, p.params.scale, out,
                lse, rows, stream);
}

PartialStates partial_states(const PrefixCache& cache, const DevicePlan& device_plan, int layer, const ConstTensorView& q) {
  const PrefixCache::ReadGuard reading(cache, "cuda::partial_states");
  const PoolView pool = check_call(cache, device_plan, layer, q).pool;
  const DevicePlan::Impl& p = device_plan.impl();
  return p.work.states(storage_of(pool), pool.dtype, q.data, p.params.scale);
}

struct LevelsPlan::Impl {
  work::LevelsShape shape;
  int queries;
  float scale;
  DeviceWork work;
};

LevelsPlan::LevelsPlan(const Levels& levels, const ConstTensorView& q, const AttentionParams& params) {
  const work::LevelsShape shape = work::check_levels(levels, q, params, Device::cuda, kWho);
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
  std::vector<SpanSize> sizes;
  work::level_spans(levels, sizes);
  const std::int64_t split = cost_model::cheapest_split(
      sizes, cost_model::SplitShape{shape.q_heads, shape.kv_heads, shape.head_dim, levels.queries_per_seq, 0}, kernels::multiprocessor_count());
  impl_ = std::make_unique<Impl>(Impl{shape, levels.queries_per_seq, work::resolved_scale(params.scale, shape.head_dim, kWho),
                                      DeviceWork(shape.q_heads, shape.kv_heads, shape.head_dim)});
  impl_->work.load(work::from_levels(levels, shape, split), Upload::one_shot, nullptr);
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
  p.work.attend(cuda_work::KvStorage{}, p.shape.dtype, q.data, p.scale, out, lse, tokens, stream);
}

struct PagedAttention::Impl {
  KvLayout layout;
  bool planned = false;
  work::PagedSchedule schedule;  // the last plan
  work::PagedSchedule spare;     // the next plan is made here, then swapped in: both keep their memory
  work::PageStrides strides;     // of the last run, or the layout's until a run
  std::optional<DeviceWork> work;
  work::Work staged;             // the loaded work (its memory reused by the next)
  std::vector<SpanSize> spans;   // the cost model's input (its memory reused too)
  std::int64_t split = 0;        // the loaded work's item split
  mutable std::atomic<bool> busy{false};  // ExclusiveCall

  // `from` as work over pools of `with` strides, split by the cost model, loaded into `into` on
  // `stream`.
  void load(DeviceWork& into, const work::PagedSchedule& from, const work::PageStrides& with, cudaStream_t stream) {
    const PagedShape& shape = from.shape();
    from.spans(spans);
    const std::int64_t chosen = cost_model::cheapest_split(
        spans, cost_model::SplitShape{shape.num_qo_heads, shape.num_kv_heads, shape.head_dim, from.queries_per_seq(), 0, with.token != shape.head_dim},
        kernels::multiprocessor_count());
    from.to_work(with, 2, chosen, staged);  // bf16 and f16: two bytes an element
    into.load(staged, Upload::asynchronous, stream);
    strides = with;
    split = chosen;
  }
};

PagedAttention::PagedAttention(KvLayout layout) : impl_(std::make_unique<Impl>()) {
  impl_->layout = layout;
  cuda_memory::require_current_hopper();  // once: it allocates and synchronises, which a plan per step must not
}
PagedAttention::~PagedAttention() = default;
PagedAttention::PagedAttention(PagedAttention&&) noexcept = default;
PagedAttention& PagedAttention::operator=(PagedAttention&&) noexcept = default;

void PagedAttention::plan(const PageTableView& table, const PagedShape& shape, void* stream) {
  Impl& p = *impl_;
  const ExclusiveCall call(p.busy, kWho);
  if (cuda_work::capturing(static_cast<cudaStream_t>(stream))) {
    fail(ErrorCode::invalid_argument, "plan() outside the stream capture: captured runs replay whatever plan the last plan() gave");
  }
  const PagedShape& last = p.schedule.shape();
  const bool same_shape = p.planned && last.num_qo_heads == shape.num_qo_heads && last.num_kv_heads == shape.num_kv_heads &&
                          last.head_dim == shape.head_dim && last.page_size == shape.page_size;
  if (!same_shape && p.work && p.work->captured()) {
    fail(ErrorCode::invalid_argument, "a CUDA graph captured runs of this PagedAttention with " + std::to_string(last.num_qo_heads) +
                                          " q heads, " + std::to_string(last.num_kv_heads) + " kv heads, head_dim " +
                                          std::to_string(last.head_dim) + " and pages of " + std::to_string(last.page_size) +
                                          " tokens; plans of another shape need a PagedAttention of their own");
  }
  p.spare.assign(table, shape, kWho);
  // Everything is swapped in only once loaded: a refused load leaves the last plan in place.
  std::optional<DeviceWork> fresh;  // another shape: a workspace of its own
  if (!same_shape) fresh.emplace(shape.num_qo_heads, shape.num_kv_heads, shape.head_dim);
  const work::PageStrides strides = same_shape ? p.strides : work::interleaved_strides(p.layout, shape);
  p.load(fresh ? *fresh : *p.work, p.spare, strides, static_cast<cudaStream_t>(stream));
  if (fresh) p.work = std::move(fresh);
  std::swap(p.schedule, p.spare);
  p.planned = true;
}

std::uint64_t PagedAttention::plan_fingerprint() const {
  const ExclusiveCall call(impl_->busy, kWho);
  if (!impl_->planned) fail(ErrorCode::invalid_argument, "PagedAttention has no plan yet: call plan() first");
  return impl_->schedule.fingerprint(impl_->split);
}

void PagedAttention::run(const PagedKv& kv, const ConstTensorView& q, const TensorView& out, const TensorView& lse, void* stream_handle) {
  Impl& p = *impl_;
  const ExclusiveCall call(p.busy, kWho);
  if (!p.planned) fail(ErrorCode::invalid_argument, "PagedAttention has no plan yet: call plan() first");
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const PagedShape& shape = p.schedule.shape();
  const work::PageStrides strides = work::check_paged_kv(kv, shape, Device::cuda, p.schedule.max_page(), kWho);
  if (kv.dtype != DType::bf16 && kv.dtype != DType::f16) {
    fail(ErrorCode::invalid_argument, "kv_cache is " + std::string(to_string(kv.dtype)) + "; the CUDA backend runs bf16 or f16");
  }
  const std::int64_t tokens = p.schedule.num_seqs() * p.schedule.queries_per_seq();
  expect_tensor(q, "q", {kv.dtype}, Device::cuda, {tokens, shape.num_qo_heads, shape.head_dim});
  expect_outputs(out, lse, tokens, shape.num_qo_heads, shape.head_dim);
  if (tokens == 0) return;
  cuda_memory::expect_device_pointer(q.data, "q");
  cuda_memory::expect_device_pointer(kv.k, "kv_cache's K");
  cuda_memory::expect_device_pointer(kv.v, "kv_cache's V");
  if (reinterpret_cast<std::uintptr_t>(q.data) % 16 != 0) fail(ErrorCode::invalid_argument, "q must be 16-byte aligned");
  if (strides != p.strides) {
    // Graphs replay the work loaded last: offsets for other strides would have them read their
    // captured pools wrongly.
    if (p.work->captured()) {
      fail(ErrorCode::invalid_argument,
           "a CUDA graph captured runs of this PagedAttention over a kv_cache with other strides; pass kv_caches of that form, or use "
           "a PagedAttention of its own for this one");
    }
    if (cuda_work::capturing(stream)) {
      fail(ErrorCode::invalid_argument,
           "kv_cache's strides differ from those the plan was loaded for, and the stream is capturing: run once outside the capture "
           "with this kind of kv_cache (or pass the same kind to every run)");
    }
    p.load(*p.work, p.schedule, strides, stream);
  }
  const cuda_work::KvStorage storage{reinterpret_cast<std::uintptr_t>(kv.k), reinterpret_cast<std::uintptr_t>(kv.v), strides.token, strides.page,
                                     shape.page_size};
  p.work->attend(storage, kv.dtype, q.data,
                 work::resolved_scale(shape.sm_scale, shape.head_dim, kWho), out, lse, tokens, stream);
}

}  // namespace cuda
}  // namespace chunktree
