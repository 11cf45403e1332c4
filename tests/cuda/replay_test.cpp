// CUDA graphs across decode steps (label gpu; skipped where no Hopper GPU is visible): attend()
// calls captured once with a DevicePlan replay every plan that later update() calls give it,
// bitwise equal to eager calls, while the tree grows, sequences fork, finish and arrive.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "support/device_buffer.hpp"
#include "support/expect_error.hpp"
#include "support/shape.hpp"
#include "support/workload.hpp"

namespace chunktree {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

using testing::DeviceBuffer;
using testing::expect_error;
using testing::Shape;

constexpr int kLayers = 2;

// The caller's buffers of a decode loop: q, out and lse for the largest batch, one out and lse per layer.
struct StepBuffers {
  StepBuffers(const Shape& shape, std::int64_t max_batch)
      : shape(shape),
        q(static_cast<std::size_t>(max_batch * shape.q_heads * shape.head_dim) * 2),
        out{DeviceBuffer(static_cast<std::size_t>(max_batch * shape.q_heads * shape.head_dim) * 4),
            DeviceBuffer(static_cast<std::size_t>(max_batch * shape.q_heads * shape.head_dim) * 4)},
        lse{DeviceBuffer(static_cast<std::size_t>(max_batch * shape.q_heads) * 4),
            DeviceBuffer(static_cast<std::size_t>(max_batch * shape.q_heads) * 4)} {}
  ConstTensorView q_view(std::int64_t batch) const {
    return ConstTensorView(q.data(), shape.dtype, Device::cuda, {batch, shape.q_heads, shape.head_dim});
  }
  TensorView out_view(int layer, std::int64_t batch) const {
    return TensorView{out[layer].data(), DType::f32, Device::cuda, {batch, shape.q_heads, shape.head_dim}};
  }
  TensorView lse_view(int layer, std::int64_t batch) const {
    return TensorView{lse[layer].data(), DType::f32, Device::cuda, {batch, shape.q_heads}};
  }
  // Every layer's out and lse words of the first `batch` rows, after the stream's work.
  std::vector<std::uint32_t> results(std::int64_t batch, cudaStream_t stream) const {
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<std::uint32_t> words;
    for (int layer = 0; layer < kLayers; ++layer) {
      const std::size_t out_words = static_cast<std::size_t>(batch * shape.q_heads * shape.head_dim);
      const std::size_t lse_words = static_cast<std::size_t>(batch * shape.q_heads);
      const std::size_t at = words.size();
      words.resize(at + out_words + lse_words);
      EXPECT_EQ(cudaMemcpy(words.data() + at, out[layer].data(), out_words * 4, cudaMemcpyDeviceToHost), cudaSuccess);
      EXPECT_EQ(cudaMemcpy(words.data() + at + out_words, lse[layer].data(), lse_words * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return words;
  }
  void poison(cudaStream_t stream) const {
    for (int layer = 0; layer < kLayers; ++layer) {
      EXPECT_EQ(cudaMemsetAsync(out[layer].data(), 0xff, out[layer].bytes(), stream), cudaSuccess);
      EXPECT_EQ(cudaMemsetAsync(lse[layer].data(), 0xff, lse[layer].bytes(), stream), cudaSuccess);
    }
  }
  Shape shape;
  DeviceBuffer q;
  DeviceBuffer out[kLayers];
  DeviceBuffer lse[kLayers];
};

void attend_every_layer(const PrefixCache& cache, const cuda::DevicePlan& plan, const StepBuffers& buffers, std::int64_t batch,
                        cudaStream_t stream) {
  for (int layer = 0; layer < kLayers; ++layer) {
    cuda::attend(cache, plan, layer, buffers.q_view(batch), buffers.out_view(layer, batch), buffers.lse_view(layer, batch), stream);
  }
}

std::vector<Token> tokens_of(harness::Random& random, std::int64_t count) {
  std::vector<Token> tokens(static_cast<std::size_t>(count));
  for (Token& token : tokens) token = static_cast<Token>(random.integer(0, 50));
  return tokens;
}

// 200 decode steps of two prompt groups: every sequence appends a token each step; some fork,
// finish, or arrive on a prompt already cached; plans alternate whole and split items and shared
// thresholds. Each step: update, replay, then the same plan eagerly on a new DevicePlan. The graph
// is captured with buffers of the largest batch.
void replay_decode_steps(const Shape& shape, std::int64_t prompt_tokens, std::uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << shape << ", prompt " << prompt_tokens);
  harness::Random random(seed);
  CacheConfig config = testing::cache_config(shape, Device::cuda, 8192);
  config.num_layers = kLayers;
  testing::Workload w(config);
  const std::vector<Token> prompt_a = tokens_of(random, prompt_tokens);
  const std::vector<Token> prompt_b = tokens_of(random, 130);
  w.add(prompt_a);
  w.fork(0, 9);
  w.add(prompt_b);
  w.fork(10, 3);
  for (std::size_t s = 0; s < w.seqs.size(); ++s) w.append(s, tokens_of(random, 1 + static_cast<std::int64_t>(s % 3)));
  const std::int64_t max_batch = 24;
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  StepBuffers replayed(shape, max_batch);
  StepBuffers eager(shape, max_batch);

  // The capture: a plan of the batch the step starts with, its items split as the largest later
  // plans are, so that the workspace keeps room for them (4x the first plan's needs).
  PlanOptions split;
  split.max_item_tokens = 2 * shape.chunk;
  cuda::DevicePlan live(w.cache, params);
  live.update(w.cache, make_plan(w.cache, w.seqs, split), stream);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  attend_every_layer(w.cache, live, replayed, max_batch, stream);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);

  for (int step = 0; step < 200; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step << ", " << w.seqs.size() << " sequences");
    for (std::size_t s = 0; s < w.seqs.size(); ++s) w.append(s, tokens_of(random, 1));
    const auto batch_size = static_cast<std::int64_t>(w.seqs.size());
    if (step % 17 == 5 && batch_size + 2 <= max_batch) w.fork(static_cast<std::size_t>(random.integer(0, batch_size - 1)), 2);
    if (step % 13 == 7 && batch_size > 4) w.remove(static_cast<std::size_t>(random.integer(0, batch_size - 1)));
    if (step % 29 == 11 && static_cast<std::int64_t>(w.seqs.size()) < max_batch) {
      std::vector<Token> arrival(prompt_a.begin(), prompt_a.begin() + random.integer(1, prompt_tokens));
      w.add(arrival);
    }
    PlanOptions options;
    options.max_item_tokens = step % 3 == 1 ? split.max_item_tokens : 0;
    options.min_shared_rows = step % 5 == 2 ? 3 : 2;
    const Plan plan = make_plan(w.cache, w.seqs, options);
    const auto batch = static_cast<std::int64_t>(w.seqs.size());

    std::vector<std::uint16_t> q(static_cast<std::size_t>(batch * shape.q_heads * shape.head_dim));
    for (std::uint16_t& bits : q) {
      const auto value = static_cast<float>(random.normal());
      bits = shape.dtype == DType::bf16 ? float_to_bf16(value) : float_to_fp16(value);
    }
    ASSERT_EQ(cudaMemcpyAsync(replayed.q.data(), q.data(), q.size() * 2, cudaMemcpyHostToDevice, stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(eager.q.data(), q.data(), q.size() * 2, cudaMemcpyHostToDevice, stream), cudaSuccess);
    replayed.poison(stream);
    eager.poison(stream);
    live.update(w.cache, plan, stream);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    const std::vector<std::uint32_t> got = replayed.results(batch, stream);

    const cuda::DevicePlan once(w.cache, plan, params);
    attend_every_layer(w.cache, once, eager, batch, stream);
    const std::vector<std::uint32_t> expected = eager.results(batch, stream);
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], expected[i]) << "word " << i << " of " << got.size() << " (replayed vs eager)";
    }
    for (std::uint32_t word : expected) ASSERT_NE(word, 0xffffffffu) << "an output was not written";
  }
  ASSERT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(CudaReplay, CapturedAttendFollowsEveryLaterPlanBitwise) {
  REQUIRE_HOPPER();
  replay_decode_steps(Shape{32, 8, 128, 64, DType::bf16}, 300, 71);  // shared items wide enough for wgmma tiles
  replay_decode_steps(Shape{4, 2, 64, 16, DType::f16}, 300, 72);     // mma.sync tiles only, short chunks
  // Split steps cut 2000 shared tokens into 16 items: 256 wgmma tiles, two per CTA of the
  // persistent grid, so that its stage phases carry over from tile to tile.
  replay_decode_steps(Shape{64, 8, 128, 64, DType::bf16}, 2000, 74);
}

// What a captured workspace cannot follow is refused, and the DevicePlan keeps its last plan.
TEST(CudaReplay, PlansTheCaptureCannotFollowAreRefused) {
  REQUIRE_HOPPER();
  const Shape shape{4, 2, 64, 16, DType::bf16};
  harness::Random random(73);
  testing::Workload w(testing::cache_config(shape, Device::cuda, 8192));
  w.add(tokens_of(random, 40));
  w.fork(0, 1);
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cuda::DevicePlan live(w.cache, params);
  DeviceBuffer q(static_cast<std::size_t>(2 * shape.q_heads * shape.head_dim) * 2);
  DeviceBuffer out(static_cast<std::size_t>(2 * shape.q_heads * shape.head_dim) * 4);
  const ConstTensorView q_view(q.data(), shape.dtype, Device::cuda, {2, shape.q_heads, shape.head_dim});
  const TensorView out_view{out.data(), DType::f32, Device::cuda, {2, shape.q_heads, shape.head_dim}};
  EXPECT_THROW(cuda::attend(w.cache, live, 0, q_view, out_view, {}, stream), Error) << "no plan yet";
  live.update(w.cache, make_plan(w.cache, w.seqs), stream);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  cuda::attend(w.cache, live, 0, q_view, out_view, {}, stream);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);

  w.add(tokens_of(random, 5));  // a third sequence: more rows than the captured buffers hold
  expect_error([&] { live.update(w.cache, make_plan(w.cache, w.seqs), stream); }, ErrorCode::capacity_exhausted, "buffers");
  w.remove(w.seqs.size() - 1);
  EXPECT_THROW(cuda::attend(w.cache, live, 0, q_view, out_view, {}, stream), Error) << "the cache changed: the plan is stale";
  for (int s = 0; s < 1200; ++s) w.add(tokens_of(random, 3));  // more rows than the workspace keeps room for (1024)
  expect_error([&] { live.update(w.cache, make_plan(w.cache, w.seqs), stream); }, ErrorCode::capacity_exhausted, "Capture again");
  for (int s = 0; s < 1200; ++s) w.remove(w.seqs.size() - 1);
  w.append(0, tokens_of(random, 3));
  PlanOptions two_queries;
  two_queries.queries_per_seq = 2;
  EXPECT_THROW(live.update(w.cache, make_plan(w.cache, w.seqs, two_queries), stream), Error);
  EXPECT_NO_THROW(live.update(w.cache, make_plan(w.cache, w.seqs), stream));

  // A DevicePlan made with its plan is captured with its eager launches: it replays that plan only.
  cuda::DevicePlan fixed(w.cache, make_plan(w.cache, w.seqs), params);
  cudaGraph_t fixed_graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  cuda::attend(w.cache, fixed, 0, q_view, out_view, {}, stream);
  ASSERT_EQ(cudaStreamEndCapture(stream, &fixed_graph), cudaSuccess);
  w.append(0, tokens_of(random, 1));
  expect_error([&] { fixed.update(w.cache, make_plan(w.cache, w.seqs), stream); }, ErrorCode::invalid_argument, "without a plan");
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(fixed_graph), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

}  // namespace
}  // namespace chunktree
