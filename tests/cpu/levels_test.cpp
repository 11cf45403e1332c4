// The levels API (chunktree/levels.hpp) where only the CPU backend has something to show: segments
// that share one host page pool, thread counts, an empty batch, and the checks of q's data, out
// and lse in cpu::attend_levels. The cases both backends pass are in tests/backends/levels_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/levels.hpp"
#include "support/backend_levels.hpp"
#include "support/expect_error.hpp"

namespace chunktree::testing {
namespace {

// Segments of one call may share one page pool (an engine's paged KV), each listing its pages.
TEST(CpuLevels, SegmentsShareOnePagePool) {
  harness::Random random(5);
  HostLevels host = empty_levels(3, 2);
  const int page_size = 16;
  const std::int64_t num_pages = 12;
  const std::int64_t token_elements = host.kv_heads * host.head_dim;
  const Blob k_pool = random_blob(random, host.dtype, num_pages * page_size * token_elements);
  const Blob v_pool = random_blob(random, host.dtype, num_pages * page_size * token_elements);
  auto segment = [&](std::int64_t length, std::vector<std::int32_t> pages) {
    HostSegment s;
    s.length = length;
    s.pages = std::move(pages);
    s.shape = {num_pages, page_size, host.kv_heads, host.head_dim};
    s.k = k_pool;
    s.v = v_pool;
    for (std::int64_t t = 0; t < length; ++t) {
      const std::int64_t slot = s.pages[static_cast<std::size_t>(t / page_size)] * page_size + t % page_size;
      for (std::int64_t e = 0; e < token_elements; ++e) {
        s.k_tokens.push_back(k_pool.get(slot * token_elements + e));
        s.v_tokens.push_back(v_pool.get(slot * token_elements + e));
      }
    }
    return s;
  };
  host.levels = {{HostShared{segment(40, {7, 2, 9}), 0, 3}}, {HostShared{segment(16, {4}), 0, 2}, HostShared{segment(20, {0, 11}), 2, 3}}};
  host.own = {segment(5, {3}), segment(18, {10, 1}), segment(2, {6})};
  // Views of one pool: point every segment at the same blobs.
  Levels levels = host.view();
  for (auto& level : levels.levels) {
    for (SharedSegment& shared : level) shared.kv.k.data = k_pool.data(), shared.kv.v.data = v_pool.data();
  }
  for (KvSegment& own : levels.own) own.k.data = k_pool.data(), own.v.data = v_pool.data();
  const int q_heads = 4;
  const std::vector<float> q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  Outputs got;
  got.out.assign(q.size(), std::numeric_limits<float>::quiet_NaN());
  got.lse.assign(static_cast<std::size_t>(host.tokens() * q_heads), std::numeric_limits<float>::quiet_NaN());
  const std::vector<std::int64_t> shape{host.tokens(), q_heads, host.head_dim};
  cpu::attend_levels(levels, ConstTensorView(q.data(), DType::f32, Device::cpu, shape), TensorView{got.out.data(), DType::f32, Device::cpu, shape},
                     TensorView{got.lse.data(), DType::f32, Device::cpu, {host.tokens(), q_heads}}, AttentionParams{0, 0.0f, 2});
  expect_levels_match(Backend::cpu, host, q, q_heads, got);
}

// The same bits with any number of threads, and without lse (lse then untouched).
TEST(CpuLevels, AnyThreadCountGivesTheSameBits) {
  harness::Random random(9);
  const HostLevels host = random_levels(random, LevelsOptions{.num_seqs = 6, .queries = 3, .kv_heads = 2, .head_dim = 128, .num_levels = 3});
  SCOPED_TRACE(describe(host));
  const int q_heads = 8;
  const std::vector<float> q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const float scale = 0.37f;
  const Outputs one = LevelsCall(Backend::cpu, host, q, q_heads, LevelsCallOptions{.params = AttentionParams{0, scale, 1}}).run();
  expect_levels_match(Backend::cpu, host, q, q_heads, one, DType::f32, static_cast<double>(scale));
  for (int threads : {2, 3, 7}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const LevelsCall call(Backend::cpu, host, q, q_heads, LevelsCallOptions{.params = AttentionParams{0, scale, threads}});
    if (threads != 3) {
      expect_same_bits(one, call.run());
      continue;
    }
    const Outputs without_lse = call.run(DType::f32, /*with_lse=*/false);
    ASSERT_EQ(std::memcmp(one.out.data(), without_lse.out.data(), one.out.size() * sizeof(float)), 0);
    for (float lse : without_lse.lse) ASSERT_TRUE(std::isnan(lse)) << "lse was written though none was passed";
  }
}

// An empty batch (no sequences, no KV) is a call that writes nothing, not an error.
TEST(CpuLevels, AnEmptyBatchWritesNothing) {
  const Levels empty;
  std::vector<float> q(1);
  std::vector<float> out(1);
  std::vector<float> lse(1);
  const ConstTensorView no_q(q.data(), DType::f32, Device::cpu, {0, 8, 64});
  const TensorView no_out{out.data(), DType::f32, Device::cpu, {0, 8, 64}};
  const TensorView no_lse{lse.data(), DType::f32, Device::cpu, {0, 8}};
  cpu::attend_levels(empty, no_q, no_out, no_lse, AttentionParams{});
  // Its other checks still hold: own KV for sequences that are not there is an error.
  Levels stray = empty;
  stray.own.resize(3);
  expect_error([&] { cpu::attend_levels(stray, no_q, no_out, no_lse, AttentionParams{}); }, ErrorCode::invalid_argument,
               "own has 3 entries; expected one per sequence of the call's 0 sequences (q's 0 rows at queries_per_seq 1), or none");
}

// What cpu::attend_levels checks after the levels (tests/backends/levels_test.cpp has those): q's
// data, and out and lse against q.
TEST(CpuLevelsErrors, QDataOutAndLse) {
  harness::Random random(31);
  const HostLevels host = levels_to_break(random);
  const Levels levels = host.view();
  std::vector<float> q = random_queries(random, 4, 4, 64, DType::bf16);
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> lse(4 * 4, std::numeric_limits<float>::quiet_NaN());
  const ConstTensorView q_view(q.data(), DType::f32, Device::cpu, {4, 4, 64});
  const TensorView out_view{out.data(), DType::f32, Device::cpu, {4, 4, 64}};
  const TensorView lse_view{lse.data(), DType::f32, Device::cpu, {4, 4}};
  auto expect_invalid = [&](const ConstTensorView& q_arg, const TensorView& out_arg, const TensorView& lse_arg, const std::string& fragment) {
    SCOPED_TRACE(fragment);
    expect_error([&] { cpu::attend_levels(levels, q_arg, out_arg, lse_arg); }, ErrorCode::invalid_argument, fragment);
  };
  expect_invalid(ConstTensorView(nullptr, DType::f32, Device::cpu, {4, 4, 64}), out_view, lse_view, "q has no data");
  // Before anything is sized by q's token count: no allocation of a sequence count q cannot have.
  expect_invalid(ConstTensorView(nullptr, DType::f32, Device::cpu, {std::int64_t{1} << 50, 4, 64}), out_view, lse_view, "q has no data");
  expect_invalid(ConstTensorView(q.data(), DType::f32, Device::cpu, {std::int64_t{1} << 60, 4, 64}), out_view, lse_view,
                 "q has shape [1152921504606846976, 4, 64], more elements than any memory holds");
  expect_invalid(q_view, TensorView{out.data(), DType::f32, Device::cpu, {2, 4, 64}}, lse_view, "out has shape [2, 4, 64]; expected [4, 4, 64]");
  expect_invalid(q_view, TensorView{out.data(), DType::f32, Device::cpu, {4, 4, 128}}, lse_view, "out has shape");
  expect_invalid(q_view, TensorView{out.data(), DType::f32, Device::cuda, {4, 4, 64}}, lse_view, "out is in cuda memory");
  expect_invalid(q_view, TensorView{nullptr, DType::f32, Device::cpu, {4, 4, 64}}, lse_view, "out has no data");
  expect_invalid(q_view, out_view, TensorView{lse.data(), DType::f32, Device::cpu, {2, 4}}, "lse has shape [2, 4]; expected [4, 4]");
  expect_invalid(q_view, out_view, TensorView{lse.data(), DType::f32, Device::cpu, {4, 4, 1}}, "lse has shape");
  expect_invalid(q_view, out_view, TensorView{lse.data(), DType::bf16, Device::cpu, {4, 4}}, "lse has dtype bf16; expected f32");
  expect_invalid(q_view, out_view, TensorView{out.data() + 250, DType::f32, Device::cpu, {4, 4}}, "lse overlaps out");
}

}  // namespace
}  // namespace chunktree::testing
