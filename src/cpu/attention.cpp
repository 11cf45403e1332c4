#include <algorithm>
#include <cmath>
#include <string>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/state.hpp"
#include "cpu/parallel_for.hpp"
#include "runtime/exclusive_call.hpp"
#include "schedule/paged.hpp"
#include "schedule/work.hpp"

namespace chunktree::cpu {
namespace {

constexpr const char* kWho = "cpu backend";  // what the messages of this backend's errors start with

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, std::string(kWho) + ": " + message); }


struct Shape {
  int q_heads;
  int kv_heads;
  int group;  // q heads per kv head
  int head_dim;
  float scale;
  int threads;
};

// A call's shape from its heads (q_heads a multiple of kv_heads, checked by the caller).
Shape shape_of(int q_heads, int kv_heads, int head_dim, float scale, int threads) {
  return Shape{q_heads, kv_heads, q_heads / kv_heads, head_dim, scale, threads};
}

int resolved_threads(const AttentionParams& params) {
  if (params.num_threads < 0) {
    fail(ErrorCode::invalid_argument, "num_threads must be at least 0 (0: one per hardware thread), got " + std::to_string(params.num_threads));
  }
  return params.num_threads > 0 ? params.num_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Shape check_inputs(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
                   const AttentionParams& params) {
  const CacheConfig& config = cache.config();
  if (config.device != Device::cpu) fail(ErrorCode::invalid_argument, "the cache lives on the GPU; use the CUDA backend");
  if (!plan.is_current(cache, plan.batch)) {
    fail(ErrorCode::invalid_argument, work::kStalePlan);
  }
  if (layer < 0 || layer >= config.num_layers) {
    fail(ErrorCode::invalid_argument,
         "layer " + std::to_string(layer) + " is out of range; the cache has " + std::to_string(config.num_layers) + " layers");
  }
  const int q_heads = work::resolved_q_heads(params.num_q_heads, config.num_kv_heads, kWho);
  const Shape shape = shape_of(q_heads, config.num_kv_heads, config.head_dim, work::resolved_scale(params.scale, config.head_dim, kWho),
                               resolved_threads(params));
  expect_tensor(q, "q", {DType::f32, DType::f16, DType::bf16}, Device::cpu,
                {static_cast<std::int64_t>(plan.batch.size()) * plan.queries_per_seq, shape.q_heads, shape.head_dim});
  return shape;
}


// The states of every (item, row, query token) of `w`, K and V read at k_base / v_base plus
// each run's offsets.
PartialStates compute_states(const work::Work& w, std::uintptr_t k_base, std::uintptr_t v_base, DType kv_dtype,
                             const ConstTensorView& q, const Shape& shape) {
  const std::size_t d = static_cast<std::size_t>(shape.head_dim);
  const std::size_t q_heads = static_cast<std::size_t>(shape.q_heads);
  const auto queries = static_cast<std::size_t>(w.queries_per_seq);

  PartialStates states;
  states.num_q_heads = shape.q_heads;
  states.head_dim = shape.head_dim;
  states.o.assign(w.num_states * queries * q_heads * d, 0.0f);
  states.lse.assign(w.num_states * queries * q_heads, -INFINITY);
  states.max.assign(w.num_states * queries * q_heads, -INFINITY);

  // One task per (item, kv head): load its KV once as fp32, then serve every row, query token
  // and q head.
  const std::size_t kv_heads = static_cast<std::size_t>(shape.kv_heads);
  parallel_for(w.items.size() * kv_heads, shape.threads, [&](std::size_t task) {
    const work::Item& item = w.items[task / kv_heads];
    const auto kv_head = static_cast<std::int64_t>(task % kv_heads);
    const auto tokens = static_cast<std::size_t>(item.tokens);
    std::vector<float> k(tokens * d);
    std::vector<float> v(tokens * d);
    std::vector<std::int64_t> positions(tokens);
    std::size_t t = 0;
    for (std::uint32_t r = item.run_begin; r < item.run_end; ++r) {
      const work::KvRun& run = w.runs[r];
      const void* k_run = reinterpret_cast<const void*>(k_base + run.k_offset);
      const void* v_run = reinterpret_cast<const void*>(v_base + run.v_offset);
      for (std::int32_t j = 0; j < run.tokens; ++j, ++t) {
        const std::int64_t base = kv_head * run.head_stride + j * run.token_stride;
        positions[t] = run.position + j;
        for (std::size_t i = 0; i < d; ++i) {
          k[t * d + i] = load_element(k_run, kv_dtype, base + static_cast<std::int64_t>(i));
          v[t * d + i] = load_element(v_run, kv_dtype, base + static_cast<std::int64_t>(i));
        }
      }
    }

    std::vector<float> query(d);
    std::vector<float> scores(tokens);
    // The sums over an item's positions in fp64, of fp32 sums over blocks of kSumBlock positions:
    // an item may hold kMaxItemTokens positions, over which one fp32 running sum drifts by ~1e-5,
    // and the CPU backend is the oracle; the blocks keep the inner loop in fp32.
    constexpr std::size_t kSumBlock = 64;
    std::vector<double> weighted(d);
    std::vector<float> block_weighted(d);
    for (std::uint32_t row = item.row_begin; row < item.row_end; ++row) {
      const std::size_t state = item.state_begin + (row - item.row_begin);
      for (std::size_t qi = 0; qi < queries; ++qi) {
        const std::int64_t limit = static_cast<std::int64_t>(w.row_limit[row]) + static_cast<std::int64_t>(qi);
        const std::size_t token = w.row_to_batch[row] * queries + qi;
        for (std::size_t g = 0; g < static_cast<std::size_t>(shape.group); ++g) {
          const std::size_t q_head = static_cast<std::size_t>(kv_head) * static_cast<std::size_t>(shape.group) + g;
          const auto q_base = static_cast<std::int64_t>((token * q_heads + q_head) * d);
          for (std::size_t i = 0; i < d; ++i) query[i] = load_element(q.data, q.dtype, q_base + static_cast<std::int64_t>(i));

          // The empty state (o = 0, lse = -inf) means "no visible position", never "no finite
          // score": NaN scores (from NaN in q or K) must reach the output as NaN.
          float max = -INFINITY;
          std::size_t visible = 0;
          for (std::size_t j = 0; j < tokens; ++j) {
            if (item.causal != 0 && positions[j] > limit) {
              scores[j] = -INFINITY;
              continue;
            }
            float dot = 0.0f;
            for (std::size_t i = 0; i < d; ++i) dot += query[i] * k[j * d + i];
            scores[j] = dot * shape.scale;
            max = std::max(max, scores[j]);
            ++visible;
          }
          const std::size_t head_state = (state * queries + qi) * q_heads + q_head;
          if (visible == 0) continue;
          std::fill(weighted.begin(), weighted.end(), 0.0);
          double sum = 0.0;
          for (std::size_t block = 0; block < tokens; block += kSumBlock) {
            std::fill(block_weighted.begin(), block_weighted.end(), 0.0f);
            float block_sum = 0.0f;
            for (std::size_t j = block; j < std::min(tokens, block + kSumBlock); ++j) {
              if (item.causal != 0 && positions[j] > limit) continue;
              const float p = std::exp(scores[j] - max);
              block_sum += p;
              for (std::size_t i = 0; i < d; ++i) block_weighted[i] += p * v[j * d + i];
            }
            sum += block_sum;
            for (std::size_t i = 0; i < d; ++i) weighted[i] += block_weighted[i];
          }
          float* o = &states.o[head_state * d];
          for (std::size_t i = 0; i < d; ++i) o[i] = static_cast<float>(weighted[i] / sum);
          states.max[head_state] = max;
          states.lse[head_state] = static_cast<float>(max + std::log(sum));
        }
      }
    }
  });
  return states;
}

// Merges each row's states per query token and q head into out (and lse), in the caller's order.
void merge_states_into(const work::Work& w, const PartialStates& states, const TensorView& out, const TensorView& lse, int threads) {
  const auto d = static_cast<std::size_t>(states.head_dim);
  const auto q_heads = static_cast<std::size_t>(states.num_q_heads);
  const auto queries = static_cast<std::size_t>(w.queries_per_seq);
  parallel_for(w.num_rows(), threads, [&](std::size_t row) {
    std::vector<float> accumulated(d);
    for (std::size_t qi = 0; qi < queries; ++qi) {
      const std::size_t token = w.row_to_batch[row] * queries + qi;
      for (std::size_t h = 0; h < q_heads; ++h) {
        StateMerger merger;
        std::fill(accumulated.begin(), accumulated.end(), 0.0f);
        for (std::uint32_t m = w.merge_begin[row]; m < w.merge_begin[row + 1]; ++m) {
          const std::size_t head_state = (w.merge_states[m] * queries + qi) * q_heads + h;
          const StateMerger::Weights weights = merger.add(states.lse[head_state]);
          const float* o = &states.o[head_state * d];
          for (std::size_t i = 0; i < d; ++i) accumulated[i] = accumulated[i] * weights.previous + o[i] * weights.part;
        }
        const float inverse = merger.inverse_weight();
        const auto out_base = static_cast<std::int64_t>((token * q_heads + h) * d);
        for (std::size_t i = 0; i < d; ++i) {
          store_element(out.data, out.dtype, out_base + static_cast<std::int64_t>(i), accumulated[i] * inverse);
        }
        if (lse.data != nullptr) static_cast<float*>(lse.data)[token * q_heads + h] = merger.merged_lse();
      }
    }
  });
}

PartialStates plan_states(const PrefixCache& cache, const work::Work& w, int layer, const ConstTensorView& q, const Shape& shape) {
  const PoolView pool = cache.pool(layer);
  return compute_states(w, reinterpret_cast<std::uintptr_t>(pool.k), reinterpret_cast<std::uintptr_t>(pool.v), pool.dtype, q, shape);
}

}  // namespace

PartialStates partial_states(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
                             const AttentionParams& params) {
  const PrefixCache::ReadGuard reading(cache, "cpu::partial_states");  // no mutation while the pools are read
  const Shape shape = check_inputs(cache, plan, layer, q, params);
  return plan_states(cache, work::from_plan(cache, plan), layer, q, shape);
}

void attend(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q, const TensorView& out,
            const TensorView& lse, const AttentionParams& params) {
  const PrefixCache::ReadGuard reading(cache, "cpu::attend");  // no mutation while the pools are read
  const Shape shape = check_inputs(cache, plan, layer, q, params);
  const std::int64_t tokens = static_cast<std::int64_t>(plan.batch.size()) * plan.queries_per_seq;
  work::expect_outputs(out, lse, tokens, shape.q_heads, shape.head_dim, Device::cpu, kWho);
  const work::Work w = work::from_plan(cache, plan);
  merge_states_into(w, plan_states(cache, w, layer, q, shape), out, lse, shape.threads);
}

void attend_levels(const Levels& levels, const ConstTensorView& q, const TensorView& out, const TensorView& lse,
                   const AttentionParams& params) {
  const work::LevelsShape levels_shape = work::check_levels(levels, q, params, Device::cpu, kWho);
  const Shape shape = shape_of(levels_shape.q_heads, levels_shape.kv_heads, levels_shape.head_dim,
                               work::resolved_scale(params.scale, levels_shape.head_dim, kWho), resolved_threads(params));
  work::expect_outputs(out, lse, q.shape[0], shape.q_heads, shape.head_dim, Device::cpu, kWho);
  // Long segments in pieces of 256 tokens: more tasks for the threads, each merged exactly.
  const work::Work w = work::from_levels(levels, levels_shape, 256);
  merge_states_into(w, compute_states(w, 0, 0, levels_shape.dtype, q, shape), out, lse, shape.threads);
}

// The paged work's items are pieces of at most 256 tokens: more tasks for the threads.
constexpr std::int64_t kPagedItemTokens = 256;

struct PagedAttention::Impl {
  int threads = 0;
  bool planned = false;
  work::PagedSchedule schedule;  // the last plan
  work::PagedSchedule spare;     // the next plan is made here, then swapped in: a failed one (bad_alloc too) changes nothing
  mutable std::atomic<bool> busy{false};  // ExclusiveCall
};

PagedAttention::PagedAttention(const AttentionParams& params) : impl_(std::make_unique<Impl>()) {
  if (params.num_q_heads != 0 || params.scale != 0.0f) {
    fail(ErrorCode::invalid_argument, "PagedAttention takes the heads and the scale from plan()'s PagedShape (num_qo_heads, sm_scale); "
                                      "leave AttentionParams' num_q_heads and scale 0");
  }
  impl_->threads = resolved_threads(params);
}
PagedAttention::~PagedAttention() = default;
PagedAttention::PagedAttention(PagedAttention&&) noexcept = default;
PagedAttention& PagedAttention::operator=(PagedAttention&&) noexcept = default;

void PagedAttention::plan(const PageTableView& table, const PagedShape& shape) {
  const ExclusiveCall call(impl_->busy, kWho);
  impl_->spare.assign(table, shape, kWho);
  std::swap(impl_->schedule, impl_->spare);
  impl_->planned = true;
}

std::uint64_t PagedAttention::plan_fingerprint() const {
  const ExclusiveCall call(impl_->busy, kWho);
  if (!impl_->planned) fail(ErrorCode::invalid_argument, "PagedAttention has no plan yet: call plan() first");
  return impl_->schedule.fingerprint(kPagedItemTokens);
}

void PagedAttention::run(const PagedKv& kv, const ConstTensorView& q, const TensorView& out, const TensorView& lse) const {
  const ExclusiveCall call(impl_->busy, kWho);
  if (!impl_->planned) fail(ErrorCode::invalid_argument, "PagedAttention has no plan yet: call plan() first");
  const work::PagedSchedule& schedule = impl_->schedule;
  const PagedShape& paged = schedule.shape();
  const work::PageStrides strides = work::check_paged_kv(kv, paged, Device::cpu, schedule.max_page(), kWho);
  const std::int64_t tokens = schedule.num_seqs() * schedule.queries_per_seq();
  expect_tensor(q, "q", {DType::f32, DType::f16, DType::bf16}, Device::cpu, {tokens, paged.num_qo_heads, paged.head_dim});
  work::expect_outputs(out, lse, tokens, paged.num_qo_heads, paged.head_dim, Device::cpu, kWho);
  const Shape shape = shape_of(paged.num_qo_heads, paged.num_kv_heads, paged.head_dim,
                               work::resolved_scale(paged.sm_scale, paged.head_dim, kWho), impl_->threads);
  work::Work w;
  schedule.to_work(strides, dtype_size(kv.dtype), kPagedItemTokens, w);
  merge_states_into(w, compute_states(w, reinterpret_cast<std::uintptr_t>(kv.k), reinterpret_cast<std::uintptr_t>(kv.v), kv.dtype, q, shape),
                    out, lse, shape.threads);
}

}  // namespace chunktree::cpu
