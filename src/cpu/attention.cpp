#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/state.hpp"

namespace chunktree::cpu {
namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, "cpu backend: " + message); }

// Runs task(i) for i in [0, count) on up to `threads` threads.
template <typename Task>
void parallel_for(std::size_t count, int threads, const Task& task) {
  const std::size_t workers = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(1, threads)));
  if (workers <= 1) {
    for (std::size_t i = 0; i < count; ++i) task(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) task(i);
  };
  std::vector<std::jthread> pool;
  pool.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
}

struct Shape {
  int q_heads;
  int kv_heads;
  int group;
  int head_dim;
  float scale;
  int threads;
};

Shape check_inputs(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
                   const AttentionParams& params) {
  const CacheConfig& config = cache.config();
  if (config.device != Device::cpu) fail(ErrorCode::invalid_argument, "the cache lives on the GPU; use the CUDA backend");
  if (!plan.is_current(cache, plan.batch)) {
    fail(ErrorCode::invalid_argument, "the plan is stale: the cache changed after it was made; make a new plan");
  }
  if (layer < 0 || layer >= config.num_layers) {
    fail(ErrorCode::invalid_argument,
         "layer " + std::to_string(layer) + " is out of range; the cache has " + std::to_string(config.num_layers) + " layers");
  }
  Shape shape{};
  shape.kv_heads = config.num_kv_heads;
  shape.q_heads = params.num_q_heads == 0 ? config.num_kv_heads : params.num_q_heads;
  if (shape.q_heads < 1 || shape.q_heads % shape.kv_heads != 0) {
    fail(ErrorCode::invalid_argument, "num_q_heads (" + std::to_string(shape.q_heads) +
                                          ") must be a positive multiple of the cache's kv heads (" +
                                          std::to_string(shape.kv_heads) + ")");
  }
  shape.group = shape.q_heads / shape.kv_heads;
  shape.head_dim = config.head_dim;
  shape.scale = params.scale == 0.0f ? 1.0f / std::sqrt(static_cast<float>(config.head_dim)) : params.scale;
  if (!std::isfinite(shape.scale)) fail(ErrorCode::invalid_argument, "scale must be finite");
  shape.threads = params.num_threads > 0 ? params.num_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (plan.queries_per_seq != 1) {
    fail(ErrorCode::unsupported, "plans with several query tokens per sequence are not supported yet");
  }
  expect_tensor(q, "q", {DType::f32, DType::f16, DType::bf16}, Device::cpu,
                {static_cast<std::int64_t>(plan.batch.size()), shape.q_heads, shape.head_dim});
  return shape;
}

}  // namespace

namespace {

// partial_states for inputs that check_inputs has accepted.
PartialStates compute_states(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q, const Shape& shape) {
  const PoolView pool = cache.pool(layer);
  const std::size_t d = static_cast<std::size_t>(shape.head_dim);
  const std::size_t q_heads = static_cast<std::size_t>(shape.q_heads);

  PartialStates states;
  states.num_q_heads = shape.q_heads;
  states.head_dim = shape.head_dim;
  states.o.assign(plan.num_states * q_heads * d, 0.0f);
  states.lse.assign(plan.num_states * q_heads, -INFINITY);
  states.max.assign(plan.num_states * q_heads, -INFINITY);

  // One task per (item, kv head): load its KV once as fp32, then serve every row and q head.
  const std::size_t kv_heads = static_cast<std::size_t>(shape.kv_heads);
  parallel_for(plan.items.size() * kv_heads, shape.threads, [&](std::size_t task) {
    const WorkItem& item = plan.items[task / kv_heads];
    const std::size_t kv_head = task % kv_heads;
    const auto tokens = static_cast<std::size_t>(item.tokens);
    std::vector<float> k(tokens * d);
    std::vector<float> v(tokens * d);
    std::size_t t = 0;
    for (const KvPiece& piece : plan.item_pieces(item)) {
      for (std::int32_t position = piece.begin; position < piece.end; ++position, ++t) {
        const std::int64_t base = piece.chunk * pool.chunk_stride + static_cast<std::int64_t>(kv_head) * pool.head_stride +
                                  position * pool.position_stride;
        for (std::size_t i = 0; i < d; ++i) {
          k[t * d + i] = load_element(pool.k, pool.dtype, base + static_cast<std::int64_t>(i));
          v[t * d + i] = load_element(pool.v, pool.dtype, base + static_cast<std::int64_t>(i));
        }
      }
    }

    std::vector<float> query(d);
    std::vector<float> scores(tokens);
    for (std::uint32_t row = item.row_begin; row < item.row_end; ++row) {
      const std::size_t state = item.state_begin + (row - item.row_begin);
      for (std::size_t g = 0; g < static_cast<std::size_t>(shape.group); ++g) {
        const std::size_t q_head = kv_head * static_cast<std::size_t>(shape.group) + g;
        const auto q_base = static_cast<std::int64_t>((plan.row_to_batch[row] * q_heads + q_head) * d);
        for (std::size_t i = 0; i < d; ++i) query[i] = load_element(q.data, q.dtype, q_base + static_cast<std::int64_t>(i));

        float max = -INFINITY;
        for (std::size_t j = 0; j < tokens; ++j) {
          float dot = 0.0f;
          for (std::size_t i = 0; i < d; ++i) dot += query[i] * k[j * d + i];
          scores[j] = dot * shape.scale;
          max = std::max(max, scores[j]);
        }
        const std::size_t head_state = state * q_heads + q_head;
        float* o = &states.o[head_state * d];
        float sum = 0.0f;
        for (std::size_t j = 0; j < tokens; ++j) {
          const float p = std::exp(scores[j] - max);
          sum += p;
          for (std::size_t i = 0; i < d; ++i) o[i] += p * v[j * d + i];
        }
        for (std::size_t i = 0; i < d; ++i) o[i] /= sum;
        states.max[head_state] = max;
        states.lse[head_state] = max + std::log(sum);
      }
    }
  });
  return states;
}

}  // namespace

PartialStates partial_states(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q,
                             const AttentionParams& params) {
  return compute_states(cache, plan, layer, q, check_inputs(cache, plan, layer, q, params));
}

void attend(const PrefixCache& cache, const Plan& plan, int layer, const ConstTensorView& q, const TensorView& out,
            const TensorView& lse, const AttentionParams& params) {
  const Shape shape = check_inputs(cache, plan, layer, q, params);
  const auto batch = static_cast<std::int64_t>(plan.batch.size());
  expect_tensor(out, "out", {DType::f32, DType::f16, DType::bf16}, Device::cpu, {batch, shape.q_heads, shape.head_dim});
  if (lse.data != nullptr) expect_tensor(lse, "lse", {DType::f32}, Device::cpu, {batch, shape.q_heads});

  const PartialStates states = compute_states(cache, plan, layer, q, shape);
  const std::size_t d = static_cast<std::size_t>(shape.head_dim);
  const std::size_t q_heads = static_cast<std::size_t>(shape.q_heads);
  parallel_for(plan.num_rows(), shape.threads, [&](std::size_t row) {
    const std::size_t batch_index = plan.row_to_batch[row];
    std::vector<float> accumulated(d);
    for (std::size_t h = 0; h < q_heads; ++h) {
      StateMerger merger;
      std::fill(accumulated.begin(), accumulated.end(), 0.0f);
      for (std::uint32_t m = plan.merge_begin[row]; m < plan.merge_begin[row + 1]; ++m) {
        const std::size_t head_state = plan.merge_states[m] * q_heads + h;
        const StateMerger::Weights weights = merger.add(states.lse[head_state]);
        const float* o = &states.o[head_state * d];
        for (std::size_t i = 0; i < d; ++i) accumulated[i] = accumulated[i] * weights.previous + o[i] * weights.part;
      }
      const float inverse = merger.inverse_weight();
      const auto out_base = static_cast<std::int64_t>((batch_index * q_heads + h) * d);
      for (std::size_t i = 0; i < d; ++i) {
        store_element(out.data, out.dtype, out_base + static_cast<std::int64_t>(i), accumulated[i] * inverse);
      }
      if (lse.data != nullptr) static_cast<float*>(lse.data)[batch_index * q_heads + h] = merger.merged_lse();
    }
  });
}

}  // namespace chunktree::cpu
