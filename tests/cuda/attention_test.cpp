// The CUDA backend's own cases against the fp64 reference (label gpu; skipped where no Hopper GPU is
// visible): its kernels' tile boundaries, grids and determinism, multi-token queries on wgmma
// tiles and its partial states, and the KV writes. The cases both backends share are in
// tests/backends/attention_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/reference.hpp"
#include "support/backend.hpp"
#include "support/device_buffer.hpp"
#include "support/expect_error.hpp"
#include "support/levels.hpp"

namespace chunktree {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

using testing::Shape;

CacheConfig gpu_config(const Shape& shape, std::int64_t capacity = 4096) { return testing::cache_config(shape, Device::cuda, capacity); }

// `count` sequences of random tokens (nothing shared): every seventh one token long, the others
// `shortest` to `longest` tokens.
void add_private_sequences(testing::Workload& w, harness::Random& random, int count, std::int64_t shortest, std::int64_t longest) {
  for (int s = 0; s < count; ++s) {
    const std::int64_t length = s % 7 == 0 ? 1 : random.integer(shortest, longest);
    std::vector<Token> tokens(static_cast<std::size_t>(length));
    for (Token& token : tokens) token = static_cast<Token>(random.integer(0, 1 << 20));
    w.add(tokens);
  }
}

// `count` sequences on one random prompt of `prompt_tokens`, each with `own_tokens` to two more
// tokens of its own (a decode step's batch: one to three).
void add_decode_batch(testing::Workload& w, harness::Random& random, std::int64_t prompt_tokens, int count, std::int64_t own_tokens = 1) {
  std::vector<Token> prompt(static_cast<std::size_t>(prompt_tokens));
  for (Token& token : prompt) token = static_cast<Token>(random.integer(0, 1000));
  for (int s = 0; s < count; ++s) {
    std::vector<Token> tokens = prompt;
    for (std::int64_t t = own_tokens + s % 3; t > 0; --t) tokens.push_back(static_cast<Token>(5000 + 8 * s + t));
    w.add(tokens);
  }
}

// Elements of one layer's K (or V) pool, whatever its layout.
std::size_t pool_elements(const PrefixCache& cache) {
  const CacheConfig& c = cache.config();
  return static_cast<std::size_t>(c.capacity_chunks * c.num_kv_heads * c.chunk_size * c.head_dim);
}

// Token t's K and V rows (bf16 bits, [tokens, kv heads, head dim]) sit where layer 0's pool
// strides put slots[t]; with `nothing_else`, every other element of the pools is still zero.
void expect_pools_hold(const PrefixCache& cache, std::span<const Slot> slots, const std::vector<std::uint16_t>& k,
                       const std::vector<std::uint16_t>& v, bool nothing_else) {
  const PoolView pool = cache.pool(0);
  const std::size_t elements_in_pool = pool_elements(cache);
  std::vector<std::uint16_t> k_pool(elements_in_pool);
  std::vector<std::uint16_t> v_pool(elements_in_pool);
  CHUNKTREE_TEST_CUDA(cudaMemcpy(k_pool.data(), pool.k, elements_in_pool * 2, cudaMemcpyDeviceToHost));
  CHUNKTREE_TEST_CUDA(cudaMemcpy(v_pool.data(), pool.v, elements_in_pool * 2, cudaMemcpyDeviceToHost));
  const auto heads = static_cast<std::size_t>(cache.config().num_kv_heads);
  const auto dim = static_cast<std::size_t>(cache.config().head_dim);
  std::vector<bool> written(elements_in_pool, false);
  for (std::size_t t = 0; t < slots.size(); ++t) {
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t d = 0; d < dim; ++d) {
        const auto at = static_cast<std::size_t>(slots[t].chunk * pool.chunk_stride + static_cast<std::int64_t>(h) * pool.head_stride +
                                                 slots[t].offset * static_cast<std::int64_t>(dim)) + d;
        ASSERT_EQ(k_pool[at], k[(t * heads + h) * dim + d]) << "token " << t << " head " << h << " dim " << d;
        ASSERT_EQ(v_pool[at], v[(t * heads + h) * dim + d]) << "token " << t << " head " << h << " dim " << d;
        written[at] = true;
      }
    }
  }
  for (std::size_t i = 0; nothing_else && i < elements_in_pool; ++i) {
    if (!written[i]) ASSERT_TRUE(k_pool[i] == 0 && v_pool[i] == 0) << "pool element " << i << " written outside the slots";
  }
}

using testing::Outputs;
using testing::random_queries;
constexpr testing::Backend kCuda = testing::Backend::cuda;

// Shared spans with more than 64 query rows run on the wgmma kernel's 128-row tiles: row counts
// around the tile size, prompts on and off step and chunk boundaries, whole and split items.
TEST(CudaAttention, WideSharedSpansOnWgmmaTiles) {
  REQUIRE_HOPPER();
  harness::Random random(23);
  const Shape shapes[] = {{1, 1, 64, 16, DType::bf16}, {2, 2, 128, 128, DType::f16}, {8, 2, 128, 32, DType::bf16}};
  for (const Shape& shape : shapes) {
    const int group = shape.q_heads / shape.kv_heads;
    for (int query_rows : {65, 127, 128, 129, 264}) {
      for (int prompt_length : {1, 63, 65, 200}) {
        SCOPED_TRACE(::testing::Message() << shape << " query rows " << query_rows << " prompt " << prompt_length);
        testing::Workload w(gpu_config(shape));
        std::vector<Token> prompt(static_cast<std::size_t>(prompt_length));
        for (Token& token : prompt) token = static_cast<Token>(random.integer(0, 1000));
        for (int s = 0; s < (query_rows + group - 1) / group; ++s) {
          std::vector<Token> tokens = prompt;
          for (std::int64_t t = random.integer(0, 3); t > 0; --t) tokens.push_back(static_cast<Token>(5000 + 8 * s + t));
          w.add(tokens);
        }
        testing::check_workload(kCuda, w, shape, random);
        testing::check_workload(kCuda, w, shape, random, PlanOptions{2, shape.chunk});
      }
    }
  }
}

// A long shared prompt kept whole (wgmma tiles of 128 steps) beside private suffixes of one to
// three tokens (mma.sync tiles that end long before): every row's merge reads the wgmma tiles'
// states, so it must wait for them whichever stream runs them (experiment 70: the wgmma kernel was
// then on the second stream; since experiment 74 the merge is chained to it).
TEST(CudaAttention, TheMergeWaitsForLongWgmmaTilesBesideShortOnes) {
  REQUIRE_HOPPER();
  harness::Random random(31);
  const Shape shape{8, 2, 128, 64, DType::bf16};
  testing::Workload w(gpu_config(shape));
  add_decode_batch(w, random, 8192, 40);
  testing::check_workload(kCuda, w, shape, random);
}

// The other way round: a short shared prompt (wgmma tiles of one stage, on the caller's stream)
// beside private spans of ~4000 tokens kept whole (mma.sync tiles of 63 steps on the second
// stream): the merge, chained to the wgmma kernel, must wait for the second stream's kernel too
// (experiment 74).
TEST(CudaAttention, TheMergeWaitsForLongMmaSyncTilesBesideShortWgmmaOnes) {
  REQUIRE_HOPPER();
  harness::Random random(37);
  const Shape shape{8, 2, 128, 64, DType::bf16};
  testing::Workload w(gpu_config(shape));
  add_decode_batch(w, random, 128, 40, 4000);
  testing::check_workload(kCuda, w, shape, random);
}

TEST(CudaAttention, GqaGroupsUpTo32) {
  REQUIRE_HOPPER();
  harness::Random random(11);
  for (int group : {1, 2, 3, 5, 8, 16, 32}) {
    const Shape shape{group * 2, 2, 128, 64, DType::bf16};
    SCOPED_TRACE(::testing::Message() << shape);
    testing::Workload w(gpu_config(shape));
    w.grow(random, 20, 100);
    testing::check_workload(kCuda, w, shape, random);
  }
}

// With nothing shared every tile is a narrow one and the mma.sync kernel runs alone: thousands of
// tiles of unequal lengths (1 token, chunk and stage boundaries), whole (direct output) and split
// (merged), at every head dim. Dealt round robin they leave a few CTAs a tile more than the rest (by
// 6-40 % of the mean, by shape and seed): past the cost model's bound they run one CTA per tile
// (cost_model::round_robin_is_even).
TEST(CudaAttention, ThousandsOfNarrowTilesOfUnequalLengths) {
  REQUIRE_HOPPER();
  harness::Random random(29);
  for (const Shape& shape : {Shape{8, 8, 128, 16, DType::bf16}, Shape{16, 4, 64, 32, DType::f16}, Shape{4, 4, 256, 16, DType::bf16}}) {
    SCOPED_TRACE(::testing::Message() << shape);
    testing::Workload w(gpu_config(shape, 16384));
    add_private_sequences(w, random, 300, 1, 260);
    testing::check_workload(kCuda, w, shape, random);
    testing::check_workload(kCuda, w, shape, random, PlanOptions{1, 64});
  }
}

// A decode step as the cost model plans it (cuda::plan_options): 64 sequences of 32 q / 8 kv heads
// on a 4096-token prompt, one to three tokens of their own. On 132 SMs the model cuts the prompt
// in 6 parts of 768 (whole wgmma stages; experiment 73), so that its wgmma tiles leave SMs to the
// private tiles; on other GPUs whatever it picks. Against a whole prompt kept in one item too.
TEST(CudaAttention, ADecodeStepAsTheCostModelCutsIt) {
  REQUIRE_HOPPER();
  harness::Random random(41);
  const Shape shape{32, 8, 128, 64, DType::bf16};
  testing::Workload w(gpu_config(shape, 256));
  add_decode_batch(w, random, 4096, 64);
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  const PlanOptions chosen = cuda::plan_options(w.cache, params);
  SCOPED_TRACE(::testing::Message() << "the cost model's split " << make_plan(w.cache, w.seqs, chosen).max_item_tokens);
  testing::check_workload(kCuda, w, shape, random, chosen);
  testing::check_workload(kCuda, w, shape, random, PlanOptions{2, 0});
}

// Rows that merge 1 to 46 states (private sequences of up to 2900 tokens cut into 64-token items;
// 4, 5, 32 and 33 states among them): the merge reads more states' o at once where a row has more
// than four (d 64 and 128), across its batches of 32 states, and four at a time at d 256
// (experiment 71b).
TEST(CudaAttention, RowsMergingUpToFortyStates) {
  REQUIRE_HOPPER();
  harness::Random random(37);
  for (const Shape& shape : {Shape{8, 2, 128, 64, DType::bf16}, Shape{4, 4, 64, 16, DType::f16}, Shape{4, 2, 256, 64, DType::bf16}}) {
    SCOPED_TRACE(::testing::Message() << shape);
    testing::Workload w(gpu_config(shape, 16384));
    for (const std::int64_t length : {1, 256, 257, 2048, 2049, 2900}) {
      std::vector<Token> tokens(static_cast<std::size_t>(length));
      for (Token& token : tokens) token = static_cast<Token>(random.integer(0, 1 << 20));
      w.add(tokens);
    }
    add_private_sequences(w, random, 18, 2, 2900);
    testing::check_workload(kCuda, w, shape, random, PlanOptions{1, 64});
  }
}

// 1500 short private sequences (1 token, or 17-32: across a chunk boundary) make 1500 tiles of four
// packed kv heads, of one or two stages: five or six a CTA on any Hopper GPU, which a round robin
// deals about evenly, so a persistent grid walks them, each CTA's ring and Q hand-off carried over
// from tile to tile, at every head dim.
TEST(CudaAttention, PersistentGridWalksManyTilesPerCta) {
  REQUIRE_HOPPER();
  harness::Random random(31);
  for (const Shape& shape : {Shape{4, 4, 128, 16, DType::bf16}, Shape{16, 4, 64, 32, DType::f16}, Shape{4, 4, 256, 16, DType::bf16}}) {
    SCOPED_TRACE(::testing::Message() << shape);
    testing::Workload w(gpu_config(shape, 4096));
    add_private_sequences(w, random, 1500, 17, 32);
    testing::check_workload(kCuda, w, shape, random);
  }
}

// Beside wgmma tiles the mma.sync CTAs claim their tiles (experiments 96, 100 and 105): a shared
// prompt read by 1000 rows (192 / 384 wgmma tiles) beside a thousand private tails (1000 packed
// mma.sync tiles), far more tiles than CTAs, at d 64 and 128. On a 132-SM GPU the model splits the
// SMs for the tails of up to 250 tokens (1 to 16 stages: the wgmma tiles on 24 and 35 SMs, the
// mma.sync grid on the rest; experiments 95 and 99) and not for the d 64 tails of up to 8 tokens (one
// stage each, a grid on every SM). With 200 rows (42 wgmma tiles, one CTA each) the tails of up to 250
// tokens are claimed unsplit, and with 100 rows (48 wgmma tiles) so are 100 one-stage tails, as the
// wgmma tiles leave more than half the SMs free. One DevicePlan runs three times into poisoned
// outputs, then twice more as a graph captured from one call: each launch's last CTA to end zeroes
// the claims' counters for the next, so a counter left over would skip tiles (NaN rows) or run one
// twice. Where the wgmma CTAs fit at once (every case but the 384 unsplit ones), the mma.sync kernel
// is chained to the wgmma kernel on one stream, and in the graph by a programmatic edge (experiment
// 104): a merge that read a wgmma state early would be wrong.
TEST(CudaAttention, MixedPlansClaimTheirNarrowTilesAtEveryCall) {
  REQUIRE_HOPPER();
  harness::Random random(53);
  struct Case {
    Shape shape;
    std::int64_t longest_tail;
    int rows;
  };
  for (const Case& c : {Case{Shape{8, 2, 128, 16, DType::bf16}, 250, 1000}, Case{Shape{16, 4, 64, 32, DType::f16}, 250, 1000},
                        Case{Shape{16, 4, 64, 32, DType::f16}, 8, 1000}, Case{Shape{8, 2, 128, 16, DType::bf16}, 250, 200},
                        Case{Shape{16, 4, 64, 32, DType::f16}, 8, 100}}) {
    const Shape& shape = c.shape;
    SCOPED_TRACE(::testing::Message() << shape << " " << c.rows << " rows, tails up to " << c.longest_tail);
    testing::Workload w(gpu_config(shape, 1 << 13));
    std::vector<Token> prompt(700);
    for (Token& token : prompt) token = static_cast<Token>(random.integer(0, 1000));
    for (int s = 0; s < c.rows; ++s) {
      std::vector<Token> tokens = prompt;
      const std::int64_t own = s % 5 == 0 ? 1 : random.integer(1, c.longest_tail);
      for (std::int64_t t = 0; t < own; ++t) tokens.push_back(static_cast<Token>(2000 + random.integer(0, 1 << 20)));
      w.add(tokens);
    }
    const std::vector<float> q = testing::random_queries(w, shape, random, 1);
    const Plan plan = make_plan(w.cache, w.seqs, PlanOptions{2, 256});
    ASSERT_GE(plan.num_shared_items, 1u);  // the prompt's items, which every row reads: wgmma tiles
    AttentionParams params;
    params.num_q_heads = shape.q_heads;
    const cuda::DevicePlan device_plan(w.cache, plan, params);
    const auto rows = static_cast<std::int64_t>(w.seqs.size());
    std::vector<std::uint16_t> q16(q.size());
    for (std::size_t i = 0; i < q.size(); ++i) q16[i] = shape.dtype == DType::bf16 ? float_to_bf16(q[i]) : float_to_fp16(q[i]);
    testing::DeviceBuffer q_device(q16.size() * 2);
    q_device.upload(q16);
    testing::DeviceBuffer out_device(q.size() * sizeof(float));
    testing::DeviceBuffer lse_device(static_cast<std::size_t>(rows * shape.q_heads) * sizeof(float));
    cudaStream_t stream = nullptr;
    CHUNKTREE_TEST_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const auto attend_on = [&](cudaStream_t on) {
      cuda::attend(w.cache, device_plan, 0, ConstTensorView(q_device.data(), shape.dtype, Device::cuda, {rows, shape.q_heads, shape.head_dim}),
                   TensorView{out_device.data(), DType::f32, Device::cuda, {rows, shape.q_heads, shape.head_dim}},
                   TensorView{lse_device.data(), DType::f32, Device::cuda, {rows, shape.q_heads}}, on);
    };
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    for (int call = 0; call < 5; ++call) {
      if (call == 3) {  // after the eager calls, as a benchmark captures
        CHUNKTREE_TEST_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        attend_on(stream);
        CHUNKTREE_TEST_CUDA(cudaStreamEndCapture(stream, &graph));
        CHUNKTREE_TEST_CUDA(cudaGraphInstantiate(&exec, graph, 0));
      }
      SCOPED_TRACE(::testing::Message() << (call < 3 ? "eager call " : "graph launch ") << call);
      out_device.poison();
      lse_device.poison();
      CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());  // the poison lands before the non-blocking stream's launches
      if (call < 3) {
        attend_on(stream);
      } else {
        CHUNKTREE_TEST_CUDA(cudaGraphLaunch(exec, stream));
      }
      CHUNKTREE_TEST_CUDA(cudaStreamSynchronize(stream));
      testing::Outputs got;
      got.out = out_device.download<float>();
      got.lse = lse_device.download<float>();
      testing::expect_matches_reference(testing::Backend::cuda, w, shape, q, got);
    }
    CHUNKTREE_TEST_CUDA(cudaGraphExecDestroy(exec));
    CHUNKTREE_TEST_CUDA(cudaGraphDestroy(graph));
    CHUNKTREE_TEST_CUDA(cudaStreamDestroy(stream));
  }
}

// Short items with at most 16 query rows per kv head run on mma.sync tiles of up to four packed kv
// heads (kernels/tile_shapes.hpp): kv head counts that leave a last tile of 1–3 heads, 16 and 17
// query rows per kv head (packed and not), items of 1 token to past the packing limit (512),
// multi-token causal queries (draft tokens), beside a shared prompt and alone, at every head dim.
TEST(CudaAttention, ShortNarrowItemsPackKvHeads) {
  REQUIRE_HOPPER();
  harness::Random random(47);
  struct Case {
    Shape shape;
    int queries;
  };
  const Case cases[] = {{{5, 5, 128, 16, DType::bf16}, 1},  {{6, 6, 64, 32, DType::f16}, 4},   {{14, 7, 256, 16, DType::bf16}, 8},
                        {{32, 2, 128, 64, DType::bf16}, 1}, {{34, 2, 128, 16, DType::bf16}, 1}, {{8, 4, 128, 64, DType::bf16}, 8},
                        {{9, 9, 128, 64, DType::f16}, 16},  {{6, 3, 128, 16, DType::bf16}, 9}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.shape << " queries " << c.queries);
    testing::Workload w(gpu_config(c.shape, 8192));
    std::vector<Token> prompt(static_cast<std::size_t>(random.integer(1, 90)));
    for (Token& token : prompt) token = static_cast<Token>(random.integer(0, 1000));
    int s = 0;
    for (const int own : {1, 15, 16, 17, 63, 64, 65, 511, 512, 513}) {
      for (const bool shared : {false, true}) {
        std::vector<Token> tokens = shared ? prompt : std::vector<Token>{};
        for (int t = 0; t < std::max(own, c.queries); ++t) tokens.push_back(static_cast<Token>(2000 + 1024 * s + t));
        w.add(tokens);
        ++s;
      }
    }
    testing::check_workload(kCuda, w, c.shape, random, PlanOptions{2, 0, c.queries});
    testing::check_workload(kCuda, w, c.shape, random, PlanOptions{2, 128, c.queries}, DType::bf16);
  }
}

TEST(CudaAttention, ThousandsOfSequencesOnASharedPrompt) {
  REQUIRE_HOPPER();
  const Shape shape{8, 1, 128, 64, DType::bf16};
  harness::Random random(13);
  testing::Workload w(gpu_config(shape, 8192));
  std::vector<Token> prompt(300);
  for (Token& token : prompt) token = static_cast<Token>(random.integer(0, 1000));
  for (int s = 0; s < 1200; ++s) {
    std::vector<Token> tokens = prompt;
    tokens.resize(prompt.size() - static_cast<std::size_t>(random.integer(0, 5)));  // a few stop early: deeper tree
    const auto own = random.integer(0, 40);
    for (std::int64_t t = 0; t < own; ++t) tokens.push_back(static_cast<Token>(2000 + s * 64 + t));
    w.add(tokens);
  }
  testing::check_workload(kCuda, w, shape, random, PlanOptions{2, 256});
}

TEST(CudaAttention, BitwiseDeterministic) {
  REQUIRE_HOPPER();
  const Shape shape{16, 4, 128, 64, DType::bf16};
  harness::Random random(19);
  testing::Workload w(gpu_config(shape));
  w.grow(random, 60, 200);
  const std::vector<float> q = random_queries(w, shape, random);
  const Plan plan = make_plan(w.cache, w.seqs, PlanOptions{2, 128});
  const Outputs first = testing::run_attention(kCuda, w, plan, shape, q);
  for (int run = 0; run < 20; ++run) {
    const Outputs again = testing::run_attention(kCuda, w, plan, shape, q);
    ASSERT_EQ(std::memcmp(first.out.data(), again.out.data(), first.out.size() * sizeof(float)), 0) << "run " << run;
    ASSERT_EQ(std::memcmp(first.lse.data(), again.lse.data(), first.lse.size() * sizeof(float)), 0) << "run " << run;
  }
}

// The same sequences in a cache on the GPU and in one on the CPU, for comparing the backends'
// partial states.
struct TwinWorkloads {
  testing::Workload on_gpu;
  testing::Workload on_cpu;

  explicit TwinWorkloads(const Shape& shape) : on_gpu(gpu_config(shape)), on_cpu(testing::cache_config(shape, Device::cpu)) {}
  void add(const std::vector<Token>& tokens) {
    on_gpu.add(tokens);
    on_cpu.add(tokens);
  }
};

TEST(CudaAttention, PartialStatesMatchTheCpuBackend) {
  REQUIRE_HOPPER();
  const Shape shape{4, 4, 128, 64, DType::bf16};
  harness::Random random(23);
  TwinWorkloads twins(shape);
  for (int s = 0; s < 6; ++s) {
    std::vector<Token> tokens(static_cast<std::size_t>(130 + 7 * s), 1);
    tokens.back() = s;
    twins.add(tokens);
  }
  const testing::Workload& on_gpu = twins.on_gpu;
  const testing::Workload& on_cpu = twins.on_cpu;
  const std::vector<float> q = random_queries(on_gpu, shape, random);
  const PlanOptions options{2, 64};
  const Plan gpu_plan = make_plan(on_gpu.cache, on_gpu.seqs, options);
  const Plan cpu_plan = make_plan(on_cpu.cache, on_cpu.seqs, options);
  ASSERT_EQ(gpu_plan.num_states, cpu_plan.num_states);
  const auto batch = static_cast<std::int64_t>(q.size() / (4 * 128));
  std::vector<std::uint16_t> q16(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) q16[i] = float_to_bf16(q[i]);
  testing::DeviceBuffer q_device(q16.size() * 2);
  q_device.upload(q16);
  AttentionParams params;
  params.num_q_heads = 4;
  const cuda::DevicePlan device_plan(on_gpu.cache, gpu_plan, params);
  const PartialStates gpu = cuda::partial_states(on_gpu.cache, device_plan, 0,
                                                 ConstTensorView(q_device.data(), DType::bf16, Device::cuda, {batch, 4, 128}));
  const PartialStates cpu =
      cpu::partial_states(on_cpu.cache, cpu_plan, 0, ConstTensorView(q.data(), DType::f32, Device::cpu, {batch, 4, 128}), params);
  ASSERT_EQ(gpu.lse.size(), cpu.lse.size());
  for (std::size_t i = 0; i < cpu.lse.size(); ++i) {
    ASSERT_NEAR(gpu.lse[i], cpu.lse[i], 1e-3 * std::max(1.0f, std::abs(cpu.lse[i])));
    ASSERT_NEAR(gpu.max[i], cpu.max[i], 1e-4 * std::max(1.0f, std::abs(cpu.max[i])));
  }
  for (std::size_t i = 0; i < cpu.o.size(); ++i) ASSERT_NEAR(gpu.o[i], cpu.o[i], 2e-2 * std::max(1.0f, std::abs(cpu.o[i])));
}

// ---- Multi-token queries in the prefix-cache path (PlanOptions::queries_per_seq) ---------------

// Query tokens inside shared items, with enough query rows (sequences × query tokens × group) for
// the wgmma kernel's tiles: the causal mask cuts items several sequences read, at different limits.
TEST(CudaMultiToken, CausalMasksInsideWideSharedItems) {
  REQUIRE_HOPPER();
  harness::Random random(4100);
  auto tokens_of = [](int n, Token first) {
    std::vector<Token> tokens(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) tokens[static_cast<std::size_t>(i)] = first + i;
    return tokens;
  };
  const Shape shapes[] = {{1, 1, 64, 16, DType::bf16}, {8, 2, 128, 64, DType::bf16}, {4, 4, 128, 32, DType::f16}, {4, 2, 256, 64, DType::bf16}};
  for (const Shape& shape : shapes) {
    for (int queries : {2, 8, 33, 64}) {
      {  // forks that appended nothing: every query token is shared by all of them
        testing::Workload w(gpu_config(shape));
        w.add(tokens_of(queries + 70, 100));
        w.fork(0, 3);
        testing::check_workload(kCuda, w, shape, random, PlanOptions{2, 0, queries});
        testing::check_workload(kCuda, w, shape, random, PlanOptions{2, shape.chunk, queries});
      }
      {  // identical sequences, one of them one token longer
        testing::Workload w(gpu_config(shape));
        for (int s = 0; s < 3; ++s) w.add(tokens_of(queries + 40, 7));
        w.append(2, {9999});
        testing::check_workload(kCuda, w, shape, random, PlanOptions{2, 0, queries});
        testing::check_workload(kCuda, w, shape, random, PlanOptions{1, shape.chunk, queries});
      }
      {  // prefixes of one another: shorter sequences' query tokens inside the longer ones' span
        testing::Workload w(gpu_config(shape));
        for (int length : {200, 150, 120, queries + 1, queries}) w.add(tokens_of(length, 3));
        std::vector<Token> other = tokens_of(170, 3);
        other.push_back(9999);
        w.add(other);
        w.fork(1, 2);
        testing::check_workload(kCuda, w, shape, random, PlanOptions{2, 0, queries});
        testing::check_workload(kCuda, w, shape, random, PlanOptions{1, shape.chunk, queries});
        testing::check_workload(kCuda, w, shape, random, PlanOptions{3, 2 * shape.chunk, queries}, DType::bf16);
      }
    }
  }
}

// Many sequences on one shared prompt with query tokens of their own, and a wide shared span.
TEST(CudaMultiToken, ManySequencesOnASharedPrompt) {
  REQUIRE_HOPPER();
  const Shape shape{8, 1, 128, 64, DType::bf16};
  harness::Random random(4200);
  for (int queries : {4, 16}) {
    testing::Workload w(gpu_config(shape, 8192));
    std::vector<Token> prompt(500);
    for (Token& token : prompt) token = static_cast<Token>(random.integer(0, 1000));
    for (int s = 0; s < (queries == 4 ? 200 : 40); ++s) {
      std::vector<Token> tokens = prompt;
      const auto own = random.integer(queries, queries + 30);
      for (std::int64_t t = 0; t < own; ++t) tokens.push_back(static_cast<Token>(2000 + s * 64 + t));
      w.add(tokens);
    }
    AttentionParams params;
    params.num_q_heads = shape.q_heads;
    PlanOptions base;
    base.queries_per_seq = queries;
    testing::check_workload(kCuda, w, shape, random, cuda::plan_options(w.cache, params, base));
    testing::check_workload(kCuda, w, shape, random, PlanOptions{2, 128, queries}, DType::f16);
  }
}

TEST(CudaMultiToken, PartialStatesMatchTheCpuBackend) {
  REQUIRE_HOPPER();
  const Shape shape{4, 2, 128, 32, DType::bf16};
  const int queries = 5;
  harness::Random random(4300);
  TwinWorkloads twins(shape);
  for (int s = 0; s < 6; ++s) {
    std::vector<Token> tokens(static_cast<std::size_t>(100 + 7 * s), 1);
    if (s % 2 == 1) tokens.back() = s;  // the others end inside the longest one's span
    twins.add(tokens);
  }
  const testing::Workload& on_gpu = twins.on_gpu;
  const testing::Workload& on_cpu = twins.on_cpu;
  const auto tokens = static_cast<std::int64_t>(on_gpu.seqs.size()) * queries;
  const std::vector<float> q = random_queries(on_gpu, shape, random, queries);
  const PlanOptions options{2, 32, queries};
  const Plan gpu_plan = make_plan(on_gpu.cache, on_gpu.seqs, options);
  const Plan cpu_plan = make_plan(on_cpu.cache, on_cpu.seqs, options);
  ASSERT_EQ(gpu_plan.num_states, cpu_plan.num_states);
  const testing::Blob q_blob = testing::to_blob(q, shape.dtype);
  const auto q_device = testing::device_copy(q_blob.data(), q_blob.bytes());
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  const cuda::DevicePlan device_plan(on_gpu.cache, gpu_plan, params);
  const PartialStates gpu = cuda::partial_states(on_gpu.cache, device_plan, 0,
                                                 ConstTensorView(q_device->data(), shape.dtype, Device::cuda, {tokens, shape.q_heads, shape.head_dim}));
  const PartialStates cpu = cpu::partial_states(on_cpu.cache, cpu_plan, 0,
                                                ConstTensorView(q.data(), DType::f32, Device::cpu, {tokens, shape.q_heads, shape.head_dim}), params);
  ASSERT_EQ(gpu.lse.size(), cpu.lse.size());
  ASSERT_EQ(gpu.lse.size(), static_cast<std::size_t>(cpu_plan.num_states) * queries * shape.q_heads);
  for (std::size_t i = 0; i < cpu.lse.size(); ++i) {
    if (std::isinf(cpu.lse[i])) {  // a query token that sees none of the item
      ASSERT_EQ(gpu.lse[i], cpu.lse[i]) << "state head " << i;
      continue;
    }
    ASSERT_NEAR(gpu.lse[i], cpu.lse[i], 1e-3 * std::max(1.0f, std::abs(cpu.lse[i]))) << "state head " << i;
    ASSERT_NEAR(gpu.max[i], cpu.max[i], 1e-4 * std::max(1.0f, std::abs(cpu.max[i]))) << "state head " << i;
  }
  for (std::size_t i = 0; i < cpu.o.size(); ++i) ASSERT_NEAR(gpu.o[i], cpu.o[i], 2e-2 * std::max(1.0f, std::abs(cpu.o[i]))) << i;
}

TEST(CudaMultiToken, ShortSequencesAndBadShapesAreClear) {
  REQUIRE_HOPPER();
  const Shape shape{4, 2, 64, 16, DType::bf16};
  testing::Workload w(gpu_config(shape));
  w.add({1, 2, 3, 4, 5});
  w.add({1, 2, 3});
  testing::expect_error([&] { make_plan(w.cache, w.seqs, PlanOptions{2, 0, 4}); }, ErrorCode::invalid_argument,
                        "batch entry 1 has 3 tokens, fewer than queries_per_seq (4)");
  const Plan plan = make_plan(w.cache, w.seqs, PlanOptions{2, 0, 3});
  AttentionParams params;
  params.num_q_heads = 4;
  const cuda::DevicePlan device_plan(w.cache, plan, params);
  testing::DeviceBuffer q(6 * 4 * 64 * 2);
  testing::DeviceBuffer out(6 * 4 * 64 * 4);
  testing::DeviceBuffer lse(6 * 4 * 4);
  const ConstTensorView q_view(q.data(), DType::bf16, Device::cuda, {6, 4, 64});
  const TensorView out_view{out.data(), DType::f32, Device::cuda, {6, 4, 64}};
  const TensorView lse_view{lse.data(), DType::f32, Device::cuda, {6, 4}};
  EXPECT_NO_THROW(cuda::attend(w.cache, device_plan, 0, q_view, out_view, lse_view));
  CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());
  testing::expect_error(
      [&] { cuda::attend(w.cache, device_plan, 0, ConstTensorView(q.data(), DType::bf16, Device::cuda, {2, 4, 64}), out_view, lse_view); },
      ErrorCode::invalid_argument, "q has shape [2, 4, 64]; expected [6, 4, 64]");
  testing::expect_error(
      [&] { cuda::attend(w.cache, device_plan, 0, q_view, TensorView{out.data(), DType::f32, Device::cuda, {2, 4, 64}}, lse_view); },
      ErrorCode::invalid_argument, "out has shape [2, 4, 64]; expected [6, 4, 64]");
  testing::expect_error(
      [&] { cuda::attend(w.cache, device_plan, 0, q_view, out_view, TensorView{lse.data(), DType::f32, Device::cuda, {2, 4}}); },
      ErrorCode::invalid_argument, "lse has shape [2, 4]; expected [6, 4]");
}

TEST(CudaCache, ScatterFromDeviceTensors) {
  REQUIRE_HOPPER();
  const Shape shape{2, 2, 64, 16, DType::bf16};
  PrefixCache cache(gpu_config(shape));
  const AddResult added = cache.add(std::vector<Token>(37, 5));
  harness::Random random(29);
  std::vector<float> k(37 * 2 * 64);
  std::vector<float> v(k.size());
  for (float& x : k) x = static_cast<float>(random.normal());
  for (float& x : v) x = static_cast<float>(random.normal());
  testing::DeviceBuffer k_device(k.size() * 4);
  testing::DeviceBuffer v_device(v.size() * 4);
  k_device.upload(k);
  v_device.upload(v);
  cache.write_kv(0, added.slots, ConstTensorView(k_device.data(), DType::f32, Device::cuda, {37, 2, 64}),
                 ConstTensorView(v_device.data(), DType::f32, Device::cuda, {37, 2, 64}));
  const PoolView pool = cache.pool(0);
  std::vector<std::uint16_t> k_pool(pool_elements(cache));
  CHUNKTREE_TEST_CUDA(cudaMemcpy(k_pool.data(), pool.k, k_pool.size() * 2, cudaMemcpyDeviceToHost));
  for (std::size_t t = 0; t < 37; ++t) {
    for (int h = 0; h < 2; ++h) {
      for (int d = 0; d < 64; ++d) {
        const std::int64_t at = added.slots[t].chunk * pool.chunk_stride + h * pool.head_stride + added.slots[t].offset * 64 + d;
        ASSERT_EQ(k_pool[static_cast<std::size_t>(at)], float_to_bf16(k[(t * 2 + static_cast<std::size_t>(h)) * 64 + static_cast<std::size_t>(d)]));
      }
    }
  }
}

// A decode loop's write: K and V already on the device, enqueued on the caller's stream inside a
// captured graph (nothing may allocate or synchronize there), more slots than one launch carries.
TEST(CudaCache, WriteKvFromDeviceIsStreamOrderedAndCapturable) {
  REQUIRE_HOPPER();
  const Shape shape{2, 2, 64, 16, DType::bf16};
  PrefixCache cache(gpu_config(shape));
  const std::int64_t tokens = 2500;  // three launches of at most 1024 slots
  const AddResult added = cache.add(std::vector<Token>(static_cast<std::size_t>(tokens), 3));
  const std::size_t elements = static_cast<std::size_t>(tokens) * 2 * 64;
  harness::Random random(31);
  std::vector<std::uint16_t> k(elements);
  std::vector<std::uint16_t> v(elements);
  for (std::size_t i = 0; i < elements; ++i) {
    k[i] = float_to_bf16(static_cast<float>(random.normal()));
    v[i] = float_to_bf16(static_cast<float>(random.normal()));
  }
  testing::DeviceBuffer k_device(elements * 2);
  testing::DeviceBuffer v_device(elements * 2);
  k_device.upload(k);
  v_device.upload(v);
  cudaStream_t stream = nullptr;
  CHUNKTREE_TEST_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  CHUNKTREE_TEST_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  cache.write_kv(0, added.slots, ConstTensorView(k_device.data(), DType::bf16, Device::cuda, {tokens, 2, 64}),
                 ConstTensorView(v_device.data(), DType::bf16, Device::cuda, {tokens, 2, 64}), stream);
  CHUNKTREE_TEST_CUDA(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  CHUNKTREE_TEST_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  std::uint16_t first = 1;
  CHUNKTREE_TEST_CUDA(cudaMemcpy(&first, cache.pool(0).k, 2, cudaMemcpyDeviceToHost));
  EXPECT_EQ(first, 0u) << "capturing must not write";
  CHUNKTREE_TEST_CUDA(cudaGraphLaunch(exec, stream));
  CHUNKTREE_TEST_CUDA(cudaStreamSynchronize(stream));
  expect_pools_hold(cache, added.slots, k, v, true);
  CHUNKTREE_TEST_CUDA(cudaGraphExecDestroy(exec));
  CHUNKTREE_TEST_CUDA(cudaGraphDestroy(graph));
  CHUNKTREE_TEST_CUDA(cudaStreamDestroy(stream));
}

// K and V on the device go into the pool 16 bytes a thread where every address is 16-byte aligned,
// and an element a thread otherwise (experiment 72): both, from host and from device slots, land
// every element where the pool's strides say, and write nothing else (device slots outside the
// pool are skipped on both).
TEST(CudaCache, WriteKvFromAlignedAndMisalignedDeviceMemory) {
  REQUIRE_HOPPER();
  const Shape shape{2, 2, 64, 16, DType::bf16};
  const std::int64_t tokens = 37;  // two chunks and a part
  const std::int64_t outside = 3;  // device slots outside the pool, with rows of their own
  const std::size_t row = 2 * 64;
  harness::Random random(41);
  std::vector<std::uint16_t> k(static_cast<std::size_t>(tokens + outside) * row);
  std::vector<std::uint16_t> v(k.size());
  for (std::size_t i = 0; i < k.size(); ++i) {
    k[i] = float_to_bf16(static_cast<float>(random.normal()));
    v[i] = float_to_bf16(static_cast<float>(random.normal()));
  }
  for (const std::size_t offset_bytes : {std::size_t{0}, std::size_t{2}}) {
    for (const bool device_slots : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "k and v " << offset_bytes << " bytes past 16-byte alignment, slots on the "
                                        << (device_slots ? "device" : "host"));
      PrefixCache cache(gpu_config(shape));
      const AddResult added = cache.add(std::vector<Token>(static_cast<std::size_t>(tokens), 5));
      testing::DeviceBuffer k_device(k.size() * 2 + 16);
      testing::DeviceBuffer v_device(v.size() * 2 + 16);
      auto* k_at = static_cast<char*>(k_device.data()) + offset_bytes;
      auto* v_at = static_cast<char*>(v_device.data()) + offset_bytes;
      CHUNKTREE_TEST_CUDA(cudaMemcpy(k_at, k.data(), k.size() * 2, cudaMemcpyHostToDevice));
      CHUNKTREE_TEST_CUDA(cudaMemcpy(v_at, v.data(), v.size() * 2, cudaMemcpyHostToDevice));
      if (device_slots) {
        std::vector<std::int32_t> pairs;
        for (const Slot& slot : added.slots) pairs.insert(pairs.end(), {static_cast<std::int32_t>(slot.chunk), slot.offset});
        pairs.insert(pairs.end(), {-1, 0, static_cast<std::int32_t>(cache.config().capacity_chunks), 0, 0, shape.chunk});
        testing::DeviceBuffer pairs_device(pairs.size() * sizeof(std::int32_t));
        pairs_device.upload(pairs);
        cache.write_kv(0, DeviceSlots{static_cast<const std::int32_t*>(pairs_device.data()), tokens + outside},
                       ConstTensorView(k_at, DType::bf16, Device::cuda, {tokens + outside, 2, 64}),
                       ConstTensorView(v_at, DType::bf16, Device::cuda, {tokens + outside, 2, 64}));
        CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());
      } else {
        cache.write_kv(0, added.slots, ConstTensorView(k_at, DType::bf16, Device::cuda, {tokens, 2, 64}),
                       ConstTensorView(v_at, DType::bf16, Device::cuda, {tokens, 2, 64}));
        CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());
      }
      expect_pools_hold(cache, added.slots, k, v, true);
    }
  }
}

TEST(CudaErrors, WrongDevicesDtypesAndStalePlansAreClear) {
  REQUIRE_HOPPER();
  const Shape shape{4, 2, 64, 16, DType::bf16};
  testing::Workload w(gpu_config(shape));
  w.add({1, 2, 3});
  const Plan plan = make_plan(w.cache, w.seqs);
  AttentionParams params;
  params.num_q_heads = 4;
  const cuda::DevicePlan device_plan(w.cache, plan, params);
  testing::DeviceBuffer q(4 * 64 * 2);
  testing::DeviceBuffer out(4 * 64 * 4);
  std::vector<std::uint16_t> host_q(4 * 64);
  const ConstTensorView q_view(q.data(), DType::bf16, Device::cuda, {1, 4, 64});
  const TensorView out_view{out.data(), DType::f32, Device::cuda, {1, 4, 64}};
  EXPECT_NO_THROW(cuda::attend(w.cache, device_plan, 0, q_view, out_view));
  auto expect_error = [](auto call, const char* fragment) {
    try {
      call();
      ADD_FAILURE() << "expected an error mentioning " << fragment;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  };
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, ConstTensorView(host_q.data(), DType::bf16, Device::cuda, {1, 4, 64}), out_view); },
               "not device memory");
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, ConstTensorView(q.data(), DType::f16, Device::cuda, {1, 4, 64}), out_view); },
               "dtype");
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, ConstTensorView(host_q.data(), DType::bf16, Device::cpu, {1, 4, 64}), out_view); },
               "cpu");
  expect_error([&] { cuda::attend(w.cache, device_plan, 2, q_view, out_view); }, "layer");
  testing::DeviceBuffer wide_q(4 * 64 * 2 + 16);
  const ConstTensorView misaligned(static_cast<char*>(wide_q.data()) + 2, DType::bf16, Device::cuda, {1, 4, 64});
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, misaligned, out_view); }, "aligned");
  testing::DeviceBuffer wide_out(4 * 64 * 4 + 16);
  // Two elements off: the kernels store four output elements at a time.
  const TensorView misaligned_out{static_cast<char*>(wide_out.data()) + 8, DType::f32, Device::cuda, {1, 4, 64}};
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, q_view, misaligned_out); }, "aligned to four");
  CacheConfig on_host = gpu_config(shape);
  on_host.device = Device::cpu;
  PrefixCache host_cache(on_host);
  host_cache.add(std::vector<Token>{1});
  expect_error([&] { cuda::DevicePlan(host_cache, make_plan(host_cache, std::vector<SeqId>{}), params); }, "CPU");
  w.append(0, {4});
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, q_view, out_view); }, "stale");
  CacheConfig f32_on_gpu = gpu_config(shape);
  f32_on_gpu.dtype = DType::f32;
  expect_error([&] { PrefixCache cache(f32_on_gpu); }, "f32");
}

}  // namespace
}  // namespace chunktree
