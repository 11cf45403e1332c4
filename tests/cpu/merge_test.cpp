// The merge primitives (chunktree/merge.hpp) where only the CPU backend has something to show:
// two states that are empty, or whose lse are far apart, never give NaN; merge_states repeats its
// bits; zero tokens are a no-op; and bad arguments are clear errors. The cases both backends pass
// are in tests/backends/merge_test.cpp.
#include "chunktree/merge.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "support/backend_merge.hpp"
#include "support/merge_states.hpp"

namespace chunktree {
namespace {

using testing::Blob;
using testing::RandomStates;
using testing::same_bits;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

ConstTensorView o_view(const Blob& blob, std::vector<std::int64_t> shape) {
  return ConstTensorView(blob.data(), blob.dtype, Device::cpu, std::move(shape));
}
TensorView o_out(Blob& blob, std::vector<std::int64_t> shape) { return TensorView{blob.data(), blob.dtype, Device::cpu, std::move(shape)}; }
ConstTensorView lse_view(const std::vector<float>& lse, std::vector<std::int64_t> shape) {
  return ConstTensorView(lse.data(), DType::f32, Device::cpu, std::move(shape));
}
TensorView lse_out(std::vector<float>& lse, std::vector<std::int64_t> shape) {
  return TensorView{lse.data(), DType::f32, Device::cpu, std::move(shape)};
}

TEST(Merge, EmptyStatesNeverGiveNaN) {
  const std::int64_t tokens = 3;
  const int heads = 2;
  const int head_dim = 8;
  const std::vector<std::int64_t> shape{tokens, heads, head_dim};
  const std::vector<std::int64_t> lse_shape{tokens, heads};
  const std::int64_t n = tokens * heads * head_dim;
  Blob empty(DType::f32, n);
  for (std::int64_t i = 0; i < n; ++i) empty.set(i, 0.0f);
  const std::vector<float> empty_lse(static_cast<std::size_t>(tokens * heads), -kInf);
  harness::Random random(7);
  const Blob full = testing::random_blob(random, DType::f32, n);
  std::vector<float> full_lse;
  for (int i = 0; i < tokens * heads; ++i) full_lse.push_back(static_cast<float>(random.uniform(-5.0, 20.0)));

  auto merge = [&](const Blob& a, const std::vector<float>& a_lse, const Blob& b, const std::vector<float>& b_lse, Blob& out,
                   std::vector<float>& out_lse) {
    out = Blob(DType::f32, n);
    out_lse.assign(a_lse.size(), kNaN);
    merge_state(o_view(a, shape), lse_view(a_lse, lse_shape), o_view(b, shape), lse_view(b_lse, lse_shape), o_out(out, shape),
                lse_out(out_lse, lse_shape));
  };
  Blob out;
  std::vector<float> out_lse;
  {
    SCOPED_TRACE("empty + empty");
    merge(empty, empty_lse, empty, empty_lse, out, out_lse);
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(out.get(i), 0.0f) << i;
    for (float lse : out_lse) ASSERT_EQ(lse, -kInf);
  }
  {  // merging an empty state changes nothing, on either side
    SCOPED_TRACE("empty + full");
    merge(empty, empty_lse, full, full_lse, out, out_lse);
    EXPECT_TRUE(same_bits(out, full));
    EXPECT_TRUE(same_bits(out_lse, full_lse));
    merge(full, full_lse, empty, empty_lse, out, out_lse);
    EXPECT_TRUE(same_bits(out, full));
    EXPECT_TRUE(same_bits(out_lse, full_lse));
  }
  {  // lse far apart (exp underflows to 0) and huge: the larger state wins, no NaN
    SCOPED_TRACE("lse far apart");
    for (const auto& [high, low] : {std::pair{80.0f, -80.0f}, std::pair{1e4f, -1e4f}, std::pair{3e38f, -3e38f}}) {
      const std::vector<float> high_lse(full_lse.size(), high);
      const std::vector<float> low_lse(full_lse.size(), low);
      const Blob other = testing::random_blob(random, DType::f32, n);
      merge(full, high_lse, other, low_lse, out, out_lse);
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(out.get(i), full.get(i)) << i << " lse " << high << " vs " << low;
      for (float lse : out_lse) ASSERT_EQ(lse, high);
      merge(other, low_lse, full, high_lse, out, out_lse);
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(out.get(i), full.get(i)) << i << " lse " << low << " vs " << high;
      for (float lse : out_lse) ASSERT_EQ(lse, high);
    }
  }
  {  // some heads empty in one state, some in the other, some in both
    SCOPED_TRACE("mixed");
    std::vector<float> a_lse = full_lse;
    std::vector<float> b_lse = full_lse;
    Blob a = full;
    Blob b = testing::random_blob(random, DType::f32, n);
    a_lse[0] = -kInf;
    b_lse[1] = -kInf;
    a_lse[2] = b_lse[2] = -kInf;
    for (int d = 0; d < head_dim; ++d) {
      a.set(0 * head_dim + d, 0.0f);
      b.set(1 * head_dim + d, 0.0f);
      a.set(2 * head_dim + d, 0.0f);
      b.set(2 * head_dim + d, 0.0f);
    }
    merge(a, a_lse, b, b_lse, out, out_lse);
    for (int d = 0; d < head_dim; ++d) {
      EXPECT_EQ(out.get(d), b.get(d));
      EXPECT_EQ(out.get(head_dim + d), a.get(head_dim + d));
      EXPECT_EQ(out.get(2 * head_dim + d), 0.0f);
    }
    EXPECT_EQ(out_lse[0], b_lse[0]);
    EXPECT_EQ(out_lse[1], a_lse[1]);
    EXPECT_EQ(out_lse[2], -kInf);
    for (std::int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(out.get(i))) << i;
  }
}

TEST(Merge, MergeStatesIsBitwiseRepeatable) {
  harness::Random random(400);
  const std::int64_t tokens = 16;
  const int parts = 5;
  const int heads = 4;
  const int head_dim = 64;
  const RandomStates s = testing::random_states(random, tokens, parts, heads, head_dim, DType::f32, 0.2, 0.05);
  auto run = [&] { return testing::merge_states_on(testing::Backend::cpu, s.o, s.lse, tokens, parts, heads, head_dim, DType::bf16); };
  const testing::HostStates first = run();
  testing::expect_merged(s, first.o, first.lse);
  for (int again = 0; again < 5; ++again) ASSERT_TRUE(same_bits(run(), first)) << "run " << again;
}

TEST(Merge, ZeroTokensIsANoOp) {
  EXPECT_NO_THROW(merge_state(ConstTensorView(nullptr, DType::f32, Device::cpu, {0, 2, 64}), ConstTensorView(nullptr, DType::f32, Device::cpu, {0, 2}),
                              ConstTensorView(nullptr, DType::f32, Device::cpu, {0, 2, 64}), ConstTensorView(nullptr, DType::f32, Device::cpu, {0, 2}),
                              TensorView{nullptr, DType::f32, Device::cpu, {0, 2, 64}}, TensorView{nullptr, DType::f32, Device::cpu, {0, 2}}));
  EXPECT_NO_THROW(merge_states(ConstTensorView(nullptr, DType::f16, Device::cpu, {0, 3, 2, 64}), ConstTensorView(nullptr, DType::f32, Device::cpu, {0, 3, 2}),
                               TensorView{nullptr, DType::f32, Device::cpu, {0, 2, 64}}, TensorView{nullptr, DType::f32, Device::cpu, {0, 2}}));
}

// ---- Errors ----------------------------------------------------------------------------------

void expect_invalid(const std::function<void()>& call, const std::string& fragment) {
  SCOPED_TRACE(fragment);
  try {
    call();
    ADD_FAILURE() << "expected an error mentioning \"" << fragment << "\"";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument) << error.what();
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << "message: " << error.what() << "\nexpected: " << fragment;
  }
}

struct MergeArgs {
  std::vector<float> a = std::vector<float>(2 * 3 * 64, 0.5f);
  std::vector<float> b = std::vector<float>(2 * 3 * 64, 0.25f);
  std::vector<float> out = std::vector<float>(2 * 3 * 64, kNaN);
  std::vector<float> a_lse = std::vector<float>(2 * 3, 1.0f);
  std::vector<float> b_lse = std::vector<float>(2 * 3, 2.0f);
  std::vector<float> out_lse = std::vector<float>(2 * 3, kNaN);
  ConstTensorView a_o{a.data(), DType::f32, Device::cpu, {2, 3, 64}};
  ConstTensorView b_o{b.data(), DType::f32, Device::cpu, {2, 3, 64}};
  TensorView out_o{out.data(), DType::f32, Device::cpu, {2, 3, 64}};
  ConstTensorView a_l{a_lse.data(), DType::f32, Device::cpu, {2, 3}};
  ConstTensorView b_l{b_lse.data(), DType::f32, Device::cpu, {2, 3}};
  TensorView out_l{out_lse.data(), DType::f32, Device::cpu, {2, 3}};
  void run() const { merge_state(a_o, a_l, b_o, b_l, out_o, out_l); }
};

TEST(MergeErrors, MergeState) {
  {
    MergeArgs m;
    EXPECT_NO_THROW(m.run());
    EXPECT_FLOAT_EQ(m.out[0], 0.5f / (1.0f + std::exp(1.0f)) + 0.25f / (1.0f + std::exp(-1.0f)));
  }
  auto expect = [](const std::function<void(MergeArgs&)>& change, const std::string& fragment) {
    MergeArgs m;
    change(m);
    expect_invalid([&] { m.run(); }, fragment);
  };
  expect([](MergeArgs& m) { m.a_o.shape = {6, 64}; }, "a_o has shape [6, 64]; expected [tokens, heads, head_dim]");
  // An output over an input's memory in another dtype would overwrite elements not yet read.
  expect([](MergeArgs& m) { m.out_o = TensorView{m.a.data(), DType::bf16, Device::cpu, {2, 3, 64}}; },
         "out_o is a_o's memory but bf16 instead of f32");
  // One that overlaps an input in part would too: only an input itself, or memory apart, is an output.
  expect([](MergeArgs& m) { m.out_o = TensorView{m.a.data() + 64, DType::f32, Device::cpu, {2, 3, 64}}; },
         "out_o overlaps a_o in part; pass an output that is a_o itself or memory of its own");
  expect([](MergeArgs& m) { m.out_l = TensorView{m.b.data() + 1, DType::f32, Device::cpu, {2, 3}}; },
         "out_lse overlaps b_o in part; pass an output that is memory of its own");
  expect([](MergeArgs& m) { m.out_l = TensorView{m.out.data() + 6, DType::f32, Device::cpu, {2, 3}}; }, "out_lse overlaps out_o in part");
  expect([](MergeArgs& m) { m.b_o.shape = {2, 3, 32}; }, "b_o has shape [2, 3, 32]; expected [2, 3, 64]");
  expect([](MergeArgs& m) { m.b_o.shape = {1, 3, 64}; }, "b_o has shape [1, 3, 64]");
  expect([](MergeArgs& m) { m.out_o.shape = {2, 3, 65}; }, "out_o has shape [2, 3, 65]");
  expect([](MergeArgs& m) { m.b_o.dtype = DType::bf16; }, "b_o has dtype bf16; expected f32");
  expect([](MergeArgs& m) { m.a_l.dtype = DType::bf16; }, "a_lse has dtype bf16; expected f32");
  expect([](MergeArgs& m) { m.b_l.dtype = DType::f16; }, "b_lse has dtype f16; expected f32");
  expect([](MergeArgs& m) { m.out_l.dtype = DType::bf16; }, "out_lse has dtype bf16; expected f32");
  expect([](MergeArgs& m) { m.a_l.shape = {2, 3, 1}; }, "a_lse has shape [2, 3, 1]; expected [2, 3]");
  expect([](MergeArgs& m) { m.out_l.shape = {3, 2}; }, "out_lse has shape [3, 2]");
  expect([](MergeArgs& m) { m.b_o.device = Device::cuda; }, "b_o is in cuda memory; expected it in cpu memory");
  expect([](MergeArgs& m) { m.b_l.device = Device::cuda; }, "b_lse is in cuda memory");
  expect([](MergeArgs& m) { m.out_o.device = Device::cuda; }, "out_o is in cuda memory");
  expect([](MergeArgs& m) { m.out_l.device = Device::cuda; }, "out_lse is in cuda memory");
  expect([](MergeArgs& m) { m.out_o.data = nullptr; }, "out_o has no data");
  expect([](MergeArgs& m) { m.a_l.data = nullptr; }, "a_lse has no data");
  // Extents: none negative, and a state has at least one head and one dim (with none, the merge
  // wrote nothing, not even the lse it defines).
  expect([](MergeArgs& m) { m.a_o.shape = {-1, 3, 64}; }, "a_o has shape [-1, 3, 64], a negative extent");
  expect([](MergeArgs& m) { m.a_o.shape = m.b_o.shape = m.out_o.shape = {2, 3, 0}; }, "a_o has shape [2, 3, 0]; its heads and head_dim must each be from 1");
  // A shape whose element count wraps 64 bits is refused, not read as empty (null data and all).
  expect(
      [](MergeArgs& m) {
        m.a_o.shape = m.b_o.shape = m.out_o.shape = {std::int64_t{1} << 62, 4, 1};
        m.a_l.shape = m.b_l.shape = m.out_l.shape = {std::int64_t{1} << 62, 4};
        m.a_o.data = m.b_o.data = m.a_l.data = m.b_l.data = nullptr;
        m.out_o.data = m.out_l.data = nullptr;
      },
      "a_o has shape [4611686018427387904, 4, 1], more elements than any memory holds");
}

TEST(MergeErrors, InPlace) {
  MergeArgs m;
  const TensorView o{m.a.data(), DType::f32, Device::cpu, {2, 3, 64}};
  const TensorView lse{m.a_lse.data(), DType::f32, Device::cpu, {2, 3}};
  expect_invalid([&] { merge_state_in_place(o, lse, ConstTensorView(m.b.data(), DType::f16, Device::cpu, {2, 3, 64}), m.b_l); },
                 "other_o has dtype f16; expected f32");
  expect_invalid([&] { merge_state_in_place(o, lse, ConstTensorView(m.b.data(), DType::f32, Device::cpu, {2, 3, 32}), m.b_l); },
                 "has shape [2, 3, 32]");
  expect_invalid([&] { merge_state_in_place(o, lse, m.b_o, ConstTensorView(m.b_lse.data(), DType::f32, Device::cpu, {2, 2})); },
                 "has shape [2, 2]; expected [2, 3]");
  expect_invalid([&] { merge_state_in_place(o, lse, ConstTensorView(m.b.data(), DType::f32, Device::cuda, {2, 3, 64}), m.b_l); }, "is in cuda memory");
  expect_invalid([&] { merge_state_in_place(o, TensorView{m.a_lse.data(), DType::bf16, Device::cpu, {2, 3}}, m.b_o, m.b_l); },
                 "has dtype bf16; expected f32");
}

TEST(MergeErrors, MergeStates) {
  std::vector<float> o(2 * 4 * 3 * 64, 0.5f);
  std::vector<float> lse(2 * 4 * 3, 1.0f);
  std::vector<float> out(2 * 3 * 64, kNaN);
  std::vector<float> out_lse(2 * 3, kNaN);
  const ConstTensorView o_v(o.data(), DType::f32, Device::cpu, {2, 4, 3, 64});
  const ConstTensorView lse_v(lse.data(), DType::f32, Device::cpu, {2, 4, 3});
  const TensorView out_v{out.data(), DType::f32, Device::cpu, {2, 3, 64}};
  const TensorView out_lse_v{out_lse.data(), DType::f32, Device::cpu, {2, 3}};
  EXPECT_NO_THROW(merge_states(o_v, lse_v, out_v, out_lse_v));
  EXPECT_FLOAT_EQ(out[5], 0.5f);
  EXPECT_FLOAT_EQ(out_lse[1], 1.0f + std::log(4.0f));
  expect_invalid([&] { merge_states(o_v, lse_v, TensorView{o.data() + 64, DType::f32, Device::cpu, {2, 3, 64}}, out_lse_v); },
                 "out_o overlaps o in part; pass an output that is memory of its own");
  expect_invalid([&] { merge_states(ConstTensorView(o.data(), DType::f32, Device::cpu, {8, 3, 64}), lse_v, out_v, out_lse_v); },
                 "o has shape [8, 3, 64]; expected [tokens, n, heads, head_dim]");
  expect_invalid([&] {
    merge_states(ConstTensorView(o.data(), DType::f32, Device::cpu, {2, 0, 3, 64}), ConstTensorView(lse.data(), DType::f32, Device::cpu, {2, 0, 3}),
                 out_v, out_lse_v);
  },
                 "0 states per token");
  expect_invalid([&] { merge_states(ConstTensorView(o.data(), DType::f32, Device::cpu, {2, -4, 3, 64}), lse_v, out_v, out_lse_v); },
                 "o has shape [2, -4, 3, 64], a negative extent");
  expect_invalid([&] { merge_states(ConstTensorView(o.data(), DType::f32, Device::cpu, {0, std::int64_t{1} << 31, 3, 64}), lse_v, out_v, out_lse_v); },
                 "o holds 2147483648 states per token; merge from 1 to 2147483647");
  expect_invalid([&] { merge_states(o_v, ConstTensorView(lse.data(), DType::f32, Device::cpu, {2, 3}), out_v, out_lse_v); },
                 "lse has shape [2, 3]; expected [2, 4, 3]");
  expect_invalid([&] { merge_states(o_v, ConstTensorView(lse.data(), DType::f16, Device::cpu, {2, 4, 3}), out_v, out_lse_v); },
                 "lse has dtype f16; expected f32");
  expect_invalid([&] { merge_states(o_v, lse_v, TensorView{out.data(), DType::f32, Device::cpu, {2, 4, 3, 64}}, out_lse_v); },
                 "out_o has shape [2, 4, 3, 64]; expected [2, 3, 64]");
  expect_invalid([&] { merge_states(o_v, lse_v, out_v, TensorView{out_lse.data(), DType::f32, Device::cpu, {2, 4, 3}}); },
                 "out_lse has shape [2, 4, 3]; expected [2, 3]");
  expect_invalid([&] { merge_states(o_v, lse_v, out_v, TensorView{out_lse.data(), DType::f32, Device::cuda, {2, 3}}); },
                 "out_lse is in cuda memory; expected it in cpu memory");
  expect_invalid([&] { merge_states(o_v, ConstTensorView(lse.data(), DType::f32, Device::cuda, {2, 4, 3}), out_v, out_lse_v); },
                 "lse is in cuda memory");
  expect_invalid([&] { merge_states(o_v, lse_v, TensorView{nullptr, DType::f32, Device::cpu, {2, 3, 64}}, out_lse_v); }, "out_o has no data");
}

}  // namespace
}  // namespace chunktree
