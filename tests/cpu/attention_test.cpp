#include "chunktree/cpu_backend.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "chunktree/numeric.hpp"
#include "harness/random.hpp"
#include "support/backend.hpp"
#include "support/expect_error.hpp"
#include "support/multi_query.hpp"
#include "support/nan_inputs.hpp"
#include "support/shape.hpp"
#include "support/workload.hpp"

namespace chunktree {
namespace {

using testing::Shape;
constexpr testing::Backend kCpu = testing::Backend::cpu;

CacheConfig config_for(const Shape& shape) { return testing::cache_config(shape, Device::cpu); }

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
  params.num_threads = -1;  // 0 is "one per hardware thread"; a negative count is a mistake, not that
  EXPECT_THROW(cpu::attend(workload.cache, plan, 0, q_view, out_view, {}, params), Error);
  EXPECT_THROW(cpu::PagedAttention{params}, Error);
  params.num_threads = 0;
  workload.append(0, {4});
  try {
    cpu::attend(workload.cache, plan, 0, q_view, out_view, {}, params);
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("stale"), std::string::npos);
  }
}

// ---- Multi-token queries (PlanOptions::queries_per_seq) ----------------------------------------

// Query tokens inside shared spans: the causal mask cuts items that several sequences read,
// with different limits for different readers.
TEST(CpuAttention, MultiTokenQueriesInsideSharedSpans) {
  const Shape shape{4, 2, 64, 16, DType::bf16};
  harness::Random random(61);
  auto tokens_of = [](int n, Token first) {
    std::vector<Token> tokens(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) tokens[static_cast<std::size_t>(i)] = first + i;
    return tokens;
  };
  for (int queries : {1, 2, 3, 8, 20}) {
    SCOPED_TRACE(::testing::Message() << "queries_per_seq " << queries);
    {  // forks that appended nothing: every query token is shared by all of them
      testing::Workload workload(config_for(shape));
      workload.add(tokens_of(40, 100));
      workload.fork(0, 3);
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{2, 0, queries});
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{1, 16, queries});
    }
    {  // identical sequences added separately, and one more token on one of them
      testing::Workload workload(config_for(shape));
      workload.add(tokens_of(37, 7));
      workload.add(tokens_of(37, 7));
      workload.add(tokens_of(37, 7));
      workload.append(2, {999});
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{2, 0, queries});
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{2, 16, queries});
    }
    {  // prefixes of one another: shorter sequences' query tokens lie inside the longer ones' span
      testing::Workload workload(config_for(shape));
      workload.add(tokens_of(50, 3));
      workload.add(tokens_of(33, 3));
      workload.add(tokens_of(std::max(queries, 21), 3));
      workload.add(tokens_of(std::max(queries, 20), 3));
      std::vector<Token> other = tokens_of(45, 3);
      other.push_back(9999);
      workload.add(other);
      for (const PlanOptions& options : {PlanOptions{2, 0, queries}, PlanOptions{1, 16, queries}, PlanOptions{3, 32, queries}}) {
        testing::check_workload(kCpu, workload, shape, random, options);
      }
    }
    {  // sequences of exactly queries_per_seq tokens: the first query token sees one position
      testing::Workload workload(config_for(shape));
      workload.add(tokens_of(queries, 11));
      workload.add(tokens_of(queries, 11));
      workload.add(tokens_of(queries, 500));
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{2, 0, queries});
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{1, 16, queries});
    }
  }
}

TEST(CpuAttention, MultiTokenQueriesInEveryDtype) {
  const Shape shape{8, 2, 128, 32, DType::f16};
  harness::Random random(67);
  testing::Workload workload(config_for(shape));
  workload.grow(random, 20, 50);
  testing::add_query_tokens(workload, random, 4);
  for (DType out_dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (DType q_dtype : {DType::f32, DType::f16}) {
      SCOPED_TRACE(::testing::Message() << "out " << to_string(out_dtype) << " q " << to_string(q_dtype));
      testing::check_workload(kCpu, workload, shape, random, PlanOptions{2, 0, 4}, out_dtype, q_dtype);
    }
  }
}

TEST(CpuAttention, MultiTokenQueriesRejectShortSequencesAndBadShapes) {
  const Shape shape{4, 2, 64, 16, DType::bf16};
  testing::Workload workload(config_for(shape));
  workload.add({1, 2, 3, 4, 5});
  workload.add({1, 2, 3});
  auto expect_invalid = [](const std::function<void()>& call, const std::string& fragment) {
    try {
      call();
      ADD_FAILURE() << "expected an error mentioning \"" << fragment << "\"";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::invalid_argument) << error.what();
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << "message: " << error.what() << "\nexpected: " << fragment;
    }
  };
  expect_invalid([&] { make_plan(workload.cache, workload.seqs, PlanOptions{2, 0, 4}); },
                 "batch entry 1 has 3 tokens, fewer than queries_per_seq (4)");
  expect_invalid([&] { make_plan(workload.cache, workload.seqs, PlanOptions{2, 0, 0}); }, "queries_per_seq must be at least 1, got 0");
  expect_invalid([&] { make_plan(workload.cache, workload.seqs, PlanOptions{2, 0, -2}); }, "queries_per_seq must be at least 1");
  expect_invalid([&] { Planner(PlanOptions{2, 0, 6}).plan(workload.cache, workload.seqs); }, "fewer than queries_per_seq (6)");
  EXPECT_NO_THROW(make_plan(workload.cache, workload.seqs, PlanOptions{2, 0, 3}));

  const Plan plan = make_plan(workload.cache, workload.seqs, PlanOptions{2, 0, 3});
  std::vector<float> q(6 * 4 * 64, 0.5f);
  std::vector<float> out(6 * 4 * 64);
  std::vector<float> lse(6 * 4);
  AttentionParams params;
  params.num_q_heads = 4;
  const ConstTensorView q_view(q.data(), DType::f32, Device::cpu, {6, 4, 64});
  const TensorView out_view{out.data(), DType::f32, Device::cpu, {6, 4, 64}};
  const TensorView lse_view{lse.data(), DType::f32, Device::cpu, {6, 4}};
  EXPECT_NO_THROW(cpu::attend(workload.cache, plan, 0, q_view, out_view, lse_view, params));
  // One row per sequence is what a single-token plan takes: not this one.
  expect_invalid([&] { cpu::attend(workload.cache, plan, 0, ConstTensorView(q.data(), DType::f32, Device::cpu, {2, 4, 64}), out_view, lse_view, params); },
                 "q has shape [2, 4, 64]; expected [6, 4, 64]");
  expect_invalid([&] { cpu::partial_states(workload.cache, plan, 0, ConstTensorView(q.data(), DType::f32, Device::cpu, {2, 4, 64}), params); },
                 "q has shape [2, 4, 64]; expected [6, 4, 64]");
  expect_invalid([&] { cpu::attend(workload.cache, plan, 0, q_view, TensorView{out.data(), DType::f32, Device::cpu, {2, 4, 64}}, lse_view, params); },
                 "out has shape [2, 4, 64]; expected [6, 4, 64]");
  expect_invalid([&] { cpu::attend(workload.cache, plan, 0, q_view, out_view, TensorView{lse.data(), DType::f32, Device::cpu, {2, 4}}, params); },
                 "lse has shape [2, 4]; expected [6, 4]");
  expect_invalid([&] { cpu::attend(workload.cache, plan, 0, q_view, out_view, TensorView{out.data() + 100, DType::f32, Device::cpu, {6, 4}}, params); },
                 "lse overlaps out; pass an lse that is memory of its own");
}

// The partial states of a multi-token plan, merged per query token in the plan's order, give
// attend()'s output: states are numbered state · queries_per_seq + token.
TEST(CpuAttention, MultiTokenPartialStatesMergeToTheOutput) {
  const Shape shape{4, 2, 64, 16, DType::bf16};
  harness::Random random(71);
  testing::Workload workload(config_for(shape));
  workload.grow(random, 20, 50, 3);
  testing::add_query_tokens(workload, random, 3);
  const int queries = 3;
  const Plan plan = make_plan(workload.cache, workload.seqs, PlanOptions{2, 16, queries});
  const auto tokens = static_cast<std::int64_t>(workload.seqs.size()) * queries;
  std::vector<float> q(static_cast<std::size_t>(tokens * 4 * 64));
  for (float& value : q) value = round_to(DType::bf16, static_cast<float>(random.normal()));
  AttentionParams params;
  params.num_q_heads = 4;
  const ConstTensorView q_view(q.data(), DType::f32, Device::cpu, {tokens, 4, 64});
  const PartialStates states = cpu::partial_states(workload.cache, plan, 0, q_view, params);
  ASSERT_EQ(states.lse.size(), static_cast<std::size_t>(plan.num_states) * queries * 4);
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  cpu::attend(workload.cache, plan, 0, q_view, TensorView{out.data(), DType::f32, Device::cpu, {tokens, 4, 64}}, {}, params);
  for (std::uint32_t row = 0; row < plan.num_rows(); ++row) {
    for (int i = 0; i < queries; ++i) {
      const std::size_t token = plan.row_to_batch[row] * static_cast<std::size_t>(queries) + static_cast<std::size_t>(i);
      for (int h = 0; h < 4; ++h) {
        double max = -INFINITY;
        for (std::uint32_t m = plan.merge_begin[row]; m < plan.merge_begin[row + 1]; ++m) {
          max = std::max(max, static_cast<double>(states.lse[(plan.merge_states[m] * static_cast<std::size_t>(queries) + static_cast<std::size_t>(i)) * 4 + static_cast<std::size_t>(h)]));
        }
        ASSERT_TRUE(std::isfinite(max)) << "row " << row << " query " << i << " sees nothing";
        for (int d = 0; d < 64; ++d) {
          double sum = 0.0;
          double weighted = 0.0;
          for (std::uint32_t m = plan.merge_begin[row]; m < plan.merge_begin[row + 1]; ++m) {
            const std::size_t state = (plan.merge_states[m] * static_cast<std::size_t>(queries) + static_cast<std::size_t>(i)) * 4 + static_cast<std::size_t>(h);
            const double w = std::exp(static_cast<double>(states.lse[state]) - max);
            sum += w;
            weighted += w * states.o[state * 64 + static_cast<std::size_t>(d)];
          }
          ASSERT_NEAR(out[(token * 4 + static_cast<std::size_t>(h)) * 64 + static_cast<std::size_t>(d)], weighted / sum, 1e-5);
        }
      }
    }
  }
}

// cpu::PagedAttention takes its heads and scale from plan()'s PagedShape: AttentionParams that give
// them are refused, not silently overruled; num_threads is what they are for.
TEST(CpuPagedAttention, ParamsGiveOnlyTheThreads) {
  EXPECT_NO_THROW(cpu::PagedAttention(AttentionParams{0, 0.0f, 3}));
  for (const AttentionParams& params : {AttentionParams{8, 0.0f, 0}, AttentionParams{0, 0.5f, 0}}) {
    testing::expect_error([&] { cpu::PagedAttention attention(params); }, ErrorCode::invalid_argument,
                          "PagedAttention takes the heads and the scale from plan()'s PagedShape (num_qo_heads, sm_scale)");
  }
}

}  // namespace
}  // namespace chunktree
