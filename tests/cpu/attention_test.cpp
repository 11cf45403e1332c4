#include "chunktree/cpu_backend.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "chunktree/reference.hpp"
#include "support/shape.hpp"
#include "support/workload.hpp"

namespace chunktree {
namespace {

using testing::Shape;

// Runs attention on every live sequence of a workload and compares with the fp64 reference
// over KV recomputed from the tokens (never read back from the cache).
void expect_matches_reference(const testing::Workload& workload, const Shape& shape, const PlanOptions& options,
                              tools::Random& random, DType out_dtype = DType::f32) {
  const std::vector<SeqId>& batch = workload.seqs;
  const auto b = static_cast<std::int64_t>(batch.size());
  const std::size_t per_seq = static_cast<std::size_t>(shape.q_heads * shape.head_dim);
  std::vector<float> q(batch.size() * per_seq);
  for (float& value : q) value = round_to(shape.dtype, static_cast<float>(random.normal()));
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());  // poisoned
  std::vector<std::uint16_t> out16(q.size(), 0x7fc0);
  std::vector<float> lse(batch.size() * static_cast<std::size_t>(shape.q_heads), std::numeric_limits<float>::quiet_NaN());

  const Plan plan = make_plan(workload.cache, batch, options);
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  params.num_threads = 2;
  const TensorView out_view{out_dtype == DType::f32 ? static_cast<void*>(out.data()) : out16.data(), out_dtype, Device::cpu,
                            {b, shape.q_heads, shape.head_dim}};
  cpu::attend(workload.cache, plan, 0, ConstTensorView(q.data(), DType::f32, Device::cpu,
                                                       {b, shape.q_heads, shape.head_dim}),
              out_view, TensorView{lse.data(), DType::f32, Device::cpu, {b, shape.q_heads}}, params);

  const double scale = 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
  const double out_tolerance = out_dtype == DType::f32 ? 2e-5 : (out_dtype == DType::bf16 ? 8e-3 : 1e-3);
  for (std::size_t s = 0; s < batch.size(); ++s) {
    const std::vector<float> k = workload.expected_kv(s, 0);
    const std::vector<float> v = workload.expected_kv(s, 1);
    std::vector<double> expected(per_seq);
    std::vector<double> expected_lse(static_cast<std::size_t>(shape.q_heads));
    reference::attention(&q[s * per_seq], shape.q_heads, k.data(), v.data(), static_cast<std::int64_t>(workload.tokens[s].size()),
                         shape.kv_heads, shape.head_dim, scale, expected.data(), expected_lse.data());
    for (std::size_t i = 0; i < per_seq; ++i) {
      const float got = load_element(out_view.data, out_dtype, static_cast<std::int64_t>(s * per_seq + i));
      ASSERT_NEAR(got, expected[i], out_tolerance * std::max(1.0, std::abs(expected[i]))) << "sequence " << s << " element " << i;
    }
    for (int h = 0; h < shape.q_heads; ++h) {
      const double e = expected_lse[static_cast<std::size_t>(h)];
      ASSERT_NEAR(lse[s * static_cast<std::size_t>(shape.q_heads) + static_cast<std::size_t>(h)], e, 2e-5 * std::max(1.0, std::abs(e)));
    }
  }
}

CacheConfig config_for(const Shape& shape) { return testing::cache_config(shape, Device::cpu); }

TEST(CpuAttention, MatchesTheReferenceOnRandomTrees) {
  const Shape shapes[] = {
      {1, 1, 64, 16, DType::bf16},  {4, 4, 128, 64, DType::bf16}, {8, 2, 64, 32, DType::f16},
      {16, 1, 128, 128, DType::bf16}, {6, 3, 256, 16, DType::f32}, {32, 2, 64, 64, DType::bf16},
  };
  std::uint64_t seed = 0;
  for (const Shape& shape : shapes) {
    for (int round = 0; round < 2; ++round) {
      tools::Random random(++seed);
      testing::Workload workload(config_for(shape));
      workload.grow(random, 40, 90, round == 0 ? 3 : 30);
      for (const PlanOptions& options : {PlanOptions{}, PlanOptions{1, shape.chunk}, PlanOptions{5, 2 * shape.chunk}}) {
        SCOPED_TRACE(::testing::Message() << shape << " round " << round);
        expect_matches_reference(workload, shape, options, random);
      }
    }
  }
}

TEST(CpuAttention, OddShapes) {
  const Shape shape{4, 2, 64, 16, DType::bf16};
  tools::Random random(42);
  {  // one sequence of one token
    testing::Workload workload(config_for(shape));
    workload.add({7});
    expect_matches_reference(workload, shape, {}, random);
  }
  {  // everything shared, empty private parts: identical sequences and forks
    testing::Workload workload(config_for(shape));
    workload.add(std::vector<Token>(33, 1));
    workload.add(std::vector<Token>(33, 1));
    workload.fork(0, 3);
    expect_matches_reference(workload, shape, {}, random);
  }
  {  // nothing shared, lengths on and off chunk boundaries
    testing::Workload workload(config_for(shape));
    for (int length : {1, 15, 16, 17, 32, 47}) workload.add(std::vector<Token>(static_cast<std::size_t>(length), length));
    expect_matches_reference(workload, shape, {}, random);
  }
  {  // a sequence that is a prefix of another ends inside the tree
    testing::Workload workload(config_for(shape));
    workload.add(std::vector<Token>(40, 2));
    workload.add(std::vector<Token>(20, 2));
    workload.add(std::vector<Token>(1, 2));
    expect_matches_reference(workload, shape, {}, random);
  }
}

TEST(CpuAttention, WritesEveryOutputDtype) {
  const Shape shape{2, 1, 64, 16, DType::bf16};
  tools::Random random(3);
  testing::Workload workload(config_for(shape));
  workload.grow(random, 20, 40);
  expect_matches_reference(workload, shape, {}, random, DType::bf16);
  expect_matches_reference(workload, shape, {}, random, DType::f16);
}

TEST(CpuAttention, RejectsStalePlansAndBadShapes) {
  const Shape shape{4, 2, 64, 16, DType::bf16};
  testing::Workload workload(config_for(shape));
  workload.add({1, 2, 3});
  const Plan plan = make_plan(workload.cache, workload.seqs);
  std::vector<float> q(4 * 64), out(4 * 64);
  const ConstTensorView q_view(q.data(), DType::f32, Device::cpu, {1, 4, 64});
  const TensorView out_view{out.data(), DType::f32, Device::cpu, {1, 4, 64}};
  AttentionParams params;
  params.num_q_heads = 4;
  EXPECT_NO_THROW(cpu::attend(workload.cache, plan, 0, q_view, out_view, {}, params));
  params.num_q_heads = 3;
  EXPECT_THROW(cpu::attend(workload.cache, plan, 0, q_view, out_view, {}, params), Error);
  params.num_q_heads = 4;
  const ConstTensorView q_wrong(q.data(), DType::f32, Device::cpu, {2, 4, 64});
  EXPECT_THROW(cpu::attend(workload.cache, plan, 0, q_wrong, out_view, {}, params), Error);
  EXPECT_THROW(cpu::attend(workload.cache, plan, 1, q_view, out_view, {}, params), Error);
  workload.append(0, {4});
  try {
    cpu::attend(workload.cache, plan, 0, q_view, out_view, {}, params);
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("stale"), std::string::npos);
  }
}

}  // namespace
}  // namespace chunktree
