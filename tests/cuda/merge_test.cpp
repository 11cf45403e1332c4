// The merge primitives (chunktree/merge.hpp) on device tensors, against the reference over the
// union of the parts and against the CPU merge (label gpu; skipped where no Hopper GPU is visible).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "chunktree/device.hpp"
#include "chunktree/merge.hpp"
#include "chunktree/numeric.hpp"
#include "support/device_buffer.hpp"
#include "support/expect_error.hpp"
#include "support/levels.hpp"
#include "support/merge_states.hpp"

namespace chunktree {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

using testing::Blob;
using testing::DeviceBuffer;
using testing::device_copy;
using testing::expect_error;

constexpr float kInf = std::numeric_limits<float>::infinity();

// A blob's worth of device memory read back into a host blob of the same dtype.
Blob download(const DeviceBuffer& buffer, DType dtype, std::int64_t numel) {
  Blob blob(dtype, numel);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(blob.data(), buffer.data(), blob.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  return blob;
}

struct DeviceStates {
  std::unique_ptr<DeviceBuffer> o;
  std::unique_ptr<DeviceBuffer> lse;
};
DeviceStates upload(const Blob& o, const std::vector<float>& lse) {
  return DeviceStates{device_copy(o.data(), o.bytes()), device_copy(lse.data(), lse.size() * sizeof(float))};
}

// A merged result (downloaded) against the reference over the union of the parts.
void expect_merged(const testing::RandomStates& s, const Blob& out_o, const std::vector<float>& out_lse) {
  const double tolerance = testing::state_tolerance(s.o.dtype) + testing::state_tolerance(out_o.dtype);
  for (std::int64_t t = 0; t < s.tokens; ++t) {
    for (int h = 0; h < s.heads; ++h) {
      const std::size_t lse_at = static_cast<std::size_t>(t * s.heads + h);
      const double e = s.expected_lse[lse_at];
      if (std::isinf(e)) {
        ASSERT_EQ(out_lse[lse_at], -kInf) << "token " << t << " head " << h;
      } else {
        ASSERT_NEAR(out_lse[lse_at], e, 2e-5 * std::max(1.0, std::abs(e))) << "token " << t << " head " << h;
      }
      for (int d = 0; d < s.head_dim; ++d) {
        const std::size_t at = lse_at * static_cast<std::size_t>(s.head_dim) + static_cast<std::size_t>(d);
        const float got = out_o.get(static_cast<std::int64_t>(at));
        ASSERT_TRUE(std::isfinite(got)) << "token " << t << " head " << h << " dim " << d;
        if (std::isinf(e)) {
          ASSERT_EQ(got, 0.0f) << "token " << t << " head " << h << " dim " << d;
        } else {
          ASSERT_NEAR(got, s.expected_o[at], tolerance * s.magnitude[at]) << "token " << t << " head " << h << " dim " << d;
        }
      }
    }
  }
}

constexpr DType kDtypes[] = {DType::f32, DType::bf16, DType::f16};

TEST(CudaMerge, MergeStateGivesTheStateOverTheUnion) {
  REQUIRE_HOPPER();
  std::uint64_t seed = 3000;
  for (DType in : kDtypes) {
    for (DType out : kDtypes) {
      for (int head_dim : {64, 40, 128, 256, 300}) {
        SCOPED_TRACE(::testing::Message() << "o " << to_string(in) << " out " << to_string(out) << " head_dim " << head_dim);
        harness::Random random(++seed);
        const std::int64_t tokens = 11;
        const int heads = 3;
        const testing::RandomStates s = testing::random_states(random, tokens, 2, heads, head_dim, in, 0.2, 0.15);
        const DeviceStates a = upload(s.part_o(0), s.part_lse(0));
        const DeviceStates b = upload(s.part_o(1), s.part_lse(1));
        DeviceBuffer out_o(static_cast<std::size_t>(tokens * heads * head_dim) * dtype_size(out));
        DeviceBuffer out_lse(static_cast<std::size_t>(tokens * heads) * sizeof(float));
        const std::vector<std::int64_t> shape{tokens, heads, head_dim};
        const std::vector<std::int64_t> lse_shape{tokens, heads};
        merge_state(ConstTensorView(a.o->data(), in, Device::cuda, shape), ConstTensorView(a.lse->data(), DType::f32, Device::cuda, lse_shape),
                    ConstTensorView(b.o->data(), in, Device::cuda, shape), ConstTensorView(b.lse->data(), DType::f32, Device::cuda, lse_shape),
                    TensorView{out_o.data(), out, Device::cuda, shape}, TensorView{out_lse.data(), DType::f32, Device::cuda, lse_shape});
        expect_merged(s, download(out_o, out, tokens * heads * head_dim), out_lse.download<float>());
      }
    }
  }
}

TEST(CudaMerge, MergeStatesOfNParts) {
  REQUIRE_HOPPER();
  std::uint64_t seed = 3100;
  for (int parts : {1, 2, 5}) {
    for (DType in : kDtypes) {
      for (DType out : kDtypes) {
        SCOPED_TRACE(::testing::Message() << parts << " parts, o " << to_string(in) << " out " << to_string(out));
        harness::Random random(++seed);
        const std::int64_t tokens = 13;
        const int heads = 4;
        const int head_dim = 128;
        const testing::RandomStates s = testing::random_states(random, tokens, parts, heads, head_dim, in, 0.3, 0.1);
        const DeviceStates states = upload(s.o, s.lse);
        DeviceBuffer out_o(static_cast<std::size_t>(tokens * heads * head_dim) * dtype_size(out));
        DeviceBuffer out_lse(static_cast<std::size_t>(tokens * heads) * sizeof(float));
        merge_states(ConstTensorView(states.o->data(), in, Device::cuda, {tokens, parts, heads, head_dim}),
                     ConstTensorView(states.lse->data(), DType::f32, Device::cuda, {tokens, parts, heads}),
                     TensorView{out_o.data(), out, Device::cuda, {tokens, heads, head_dim}},
                     TensorView{out_lse.data(), DType::f32, Device::cuda, {tokens, heads}});
        expect_merged(s, download(out_o, out, tokens * heads * head_dim), out_lse.download<float>());
      }
    }
  }
}

// In place and with out aliasing either input: the same bits as into separate outputs; the same
// bits on every call, on the default stream and on the caller's.
TEST(CudaMerge, InPlaceAliasingAndRepeatable) {
  REQUIRE_HOPPER();
  harness::Random random(3200);
  for (DType dtype : kDtypes) {
    SCOPED_TRACE(to_string(dtype));
    const std::int64_t tokens = 17;
    const int heads = 4;
    const int head_dim = 128;
    const std::int64_t n = tokens * heads * head_dim;
    const std::vector<std::int64_t> shape{tokens, heads, head_dim};
    const std::vector<std::int64_t> lse_shape{tokens, heads};
    const testing::RandomStates s = testing::random_states(random, tokens, 2, heads, head_dim, dtype, 0.25, 0.1);
    const Blob a = s.part_o(0);
    const Blob b = s.part_o(1);
    const std::vector<float> a_lse = s.part_lse(0);
    const std::vector<float> b_lse = s.part_lse(1);
    const DeviceStates a_device = upload(a, a_lse);
    const DeviceStates b_device = upload(b, b_lse);
    DeviceBuffer out_o(static_cast<std::size_t>(n) * dtype_size(dtype));
    DeviceBuffer out_lse(static_cast<std::size_t>(tokens * heads) * sizeof(float));
    auto cview = [&](const DeviceStates& d) {
      return std::pair{ConstTensorView(d.o->data(), dtype, Device::cuda, shape), ConstTensorView(d.lse->data(), DType::f32, Device::cuda, lse_shape)};
    };
    merge_state(cview(a_device).first, cview(a_device).second, cview(b_device).first, cview(b_device).second,
                TensorView{out_o.data(), dtype, Device::cuda, shape}, TensorView{out_lse.data(), DType::f32, Device::cuda, lse_shape});
    const Blob expected = download(out_o, dtype, n);
    const std::vector<float> expected_lse = out_lse.download<float>();
    expect_merged(s, expected, expected_lse);
    for (int run = 0; run < 5; ++run) {
      out_o.poison();
      out_lse.poison();
      merge_state(cview(a_device).first, cview(a_device).second, cview(b_device).first, cview(b_device).second,
                  TensorView{out_o.data(), dtype, Device::cuda, shape}, TensorView{out_lse.data(), DType::f32, Device::cuda, lse_shape});
      const Blob again = download(out_o, dtype, n);
      ASSERT_EQ(std::memcmp(again.data(), expected.data(), expected.bytes()), 0) << "run " << run;
      ASSERT_EQ(out_lse.download<float>(), expected_lse);
    }
    for (int which = 0; which < 3; ++which) {
      SCOPED_TRACE(which == 0 ? "out = a" : (which == 1 ? "out = b" : "in place"));
      const DeviceStates a_copy = upload(a, a_lse);
      const DeviceStates b_copy = upload(b, b_lse);
      const DeviceStates& target = which == 1 ? b_copy : a_copy;
      const TensorView target_o{target.o->data(), dtype, Device::cuda, shape};
      const TensorView target_lse{target.lse->data(), DType::f32, Device::cuda, lse_shape};
      if (which == 2) {
        merge_state_in_place(target_o, target_lse, cview(b_copy).first, cview(b_copy).second);
      } else {
        merge_state(cview(a_copy).first, cview(a_copy).second, cview(b_copy).first, cview(b_copy).second, target_o, target_lse);
      }
      const Blob got = download(*target.o, dtype, n);
      ASSERT_EQ(std::memcmp(got.data(), expected.data(), expected.bytes()), 0);
      ASSERT_EQ(target.lse->download<float>(), expected_lse);
    }
    cudaStream_t stream = nullptr;
    CHUNKTREE_TEST_CUDA(cudaStreamCreate(&stream));
    out_o.poison();
    out_lse.poison();
    merge_state(cview(a_device).first, cview(a_device).second, cview(b_device).first, cview(b_device).second,
                TensorView{out_o.data(), dtype, Device::cuda, shape}, TensorView{out_lse.data(), DType::f32, Device::cuda, lse_shape}, stream);
    CHUNKTREE_TEST_CUDA(cudaStreamSynchronize(stream));
    CHUNKTREE_TEST_CUDA(cudaStreamDestroy(stream));
    const Blob on_stream = download(out_o, dtype, n);
    ASSERT_EQ(std::memcmp(on_stream.data(), expected.data(), expected.bytes()), 0);
  }
}

TEST(CudaMerge, EmptyStatesNeverGiveNaN) {
  REQUIRE_HOPPER();
  const std::int64_t tokens = 4;
  const int parts = 5;
  const int heads = 3;
  const int head_dim = 64;
  for (DType out : kDtypes) {
    SCOPED_TRACE(to_string(out));
    Blob o(DType::bf16, tokens * parts * heads * head_dim);
    for (std::int64_t i = 0; i < o.numel; ++i) o.set(i, 0.0f);
    const std::vector<float> lse(static_cast<std::size_t>(tokens * parts * heads), -kInf);
    const DeviceStates states = upload(o, lse);
    DeviceBuffer out_o(static_cast<std::size_t>(tokens * heads * head_dim) * dtype_size(out));
    DeviceBuffer out_lse(static_cast<std::size_t>(tokens * heads) * sizeof(float));
    merge_states(ConstTensorView(states.o->data(), DType::bf16, Device::cuda, {tokens, parts, heads, head_dim}),
                 ConstTensorView(states.lse->data(), DType::f32, Device::cuda, {tokens, parts, heads}),
                 TensorView{out_o.data(), out, Device::cuda, {tokens, heads, head_dim}},
                 TensorView{out_lse.data(), DType::f32, Device::cuda, {tokens, heads}});
    const Blob merged = download(out_o, out, tokens * heads * head_dim);
    for (std::int64_t i = 0; i < merged.numel; ++i) ASSERT_EQ(merged.get(i), 0.0f) << i;
    for (float value : out_lse.download<float>()) ASSERT_EQ(value, -kInf);
  }
}

TEST(CudaMerge, MatchesTheCpuMerge) {
  REQUIRE_HOPPER();
  harness::Random random(3300);
  const std::int64_t tokens = 32;
  const int parts = 5;
  const int heads = 8;
  const int head_dim = 128;
  const testing::RandomStates s = testing::random_states(random, tokens, parts, heads, head_dim, DType::f32, 0.2, 0.05);
  Blob cpu_o(DType::f32, tokens * heads * head_dim);
  std::vector<float> cpu_lse(static_cast<std::size_t>(tokens * heads));
  merge_states(ConstTensorView(s.o.data(), DType::f32, Device::cpu, {tokens, parts, heads, head_dim}),
               ConstTensorView(s.lse.data(), DType::f32, Device::cpu, {tokens, parts, heads}),
               TensorView{cpu_o.data(), DType::f32, Device::cpu, {tokens, heads, head_dim}},
               TensorView{cpu_lse.data(), DType::f32, Device::cpu, {tokens, heads}});
  const DeviceStates states = upload(s.o, s.lse);
  DeviceBuffer out_o(static_cast<std::size_t>(tokens * heads * head_dim) * sizeof(float));
  DeviceBuffer out_lse(static_cast<std::size_t>(tokens * heads) * sizeof(float));
  merge_states(ConstTensorView(states.o->data(), DType::f32, Device::cuda, {tokens, parts, heads, head_dim}),
               ConstTensorView(states.lse->data(), DType::f32, Device::cuda, {tokens, parts, heads}),
               TensorView{out_o.data(), DType::f32, Device::cuda, {tokens, heads, head_dim}},
               TensorView{out_lse.data(), DType::f32, Device::cuda, {tokens, heads}});
  const std::vector<float> gpu_o = out_o.download<float>();
  const std::vector<float> gpu_lse = out_lse.download<float>();
  for (std::size_t i = 0; i < gpu_o.size(); ++i) ASSERT_NEAR(gpu_o[i], cpu_o.get(static_cast<std::int64_t>(i)), 1e-5 * std::max(1.0f, std::abs(gpu_o[i]))) << i;
  for (std::size_t i = 0; i < gpu_lse.size(); ++i) {
    if (std::isinf(cpu_lse[i])) {
      ASSERT_EQ(gpu_lse[i], cpu_lse[i]) << i;
    } else {
      ASSERT_NEAR(gpu_lse[i], cpu_lse[i], 1e-5 * std::max(1.0f, std::abs(cpu_lse[i]))) << i;
    }
  }
}

TEST(CudaMerge, ErrorsAreClear) {
  REQUIRE_HOPPER();
  DeviceBuffer o(2 * 3 * 64 * 4);
  DeviceBuffer lse(2 * 3 * 4);
  DeviceBuffer out(2 * 3 * 64 * 4);
  DeviceBuffer out_lse(2 * 3 * 4);
  std::vector<float> host_o(2 * 3 * 64, 0.5f);
  std::vector<float> host_lse(2 * 3, 0.0f);
  const ConstTensorView o_v(o.data(), DType::f32, Device::cuda, {2, 3, 64});
  const ConstTensorView lse_v(lse.data(), DType::f32, Device::cuda, {2, 3});
  const TensorView out_v{out.data(), DType::f32, Device::cuda, {2, 3, 64}};
  const TensorView out_lse_v{out_lse.data(), DType::f32, Device::cuda, {2, 3}};
  expect_error([&] { merge_state(o_v, lse_v, ConstTensorView(host_o.data(), DType::f32, Device::cpu, {2, 3, 64}), lse_v, out_v, out_lse_v); },
               ErrorCode::invalid_argument, "b_o is on the cpu; expected it on the cuda");
  expect_error([&] { merge_state(o_v, ConstTensorView(host_lse.data(), DType::f32, Device::cpu, {2, 3}), o_v, lse_v, out_v, out_lse_v); },
               ErrorCode::invalid_argument, "a_lse is on the cpu");
  expect_error([&] { merge_state(o_v, lse_v, ConstTensorView(host_o.data(), DType::f32, Device::cuda, {2, 3, 64}), lse_v, out_v, out_lse_v); },
               ErrorCode::invalid_argument, "not device memory");
  expect_error([&] { merge_state(o_v, lse_v, o_v, lse_v, TensorView{host_o.data(), DType::f32, Device::cuda, {2, 3, 64}}, out_lse_v); },
               ErrorCode::invalid_argument, "not device memory");
  expect_error([&] { merge_state(o_v, lse_v, o_v, ConstTensorView(lse.data(), DType::bf16, Device::cuda, {2, 3}), out_v, out_lse_v); },
               ErrorCode::invalid_argument, "b_lse has dtype bf16; expected f32");
  expect_error([&] {
    merge_states(ConstTensorView(o.data(), DType::f32, Device::cuda, {2, 1, 3, 64}), ConstTensorView(host_lse.data(), DType::f32, Device::cuda, {2, 1, 3}),
                 out_v, out_lse_v);
  },
               ErrorCode::invalid_argument, "not device memory");
  DeviceBuffer wide(2 * 600 * 4);
  DeviceBuffer wide_out(2 * 600 * 4);
  DeviceBuffer small_lse(2 * 4);
  DeviceBuffer small_out_lse(2 * 4);
  expect_error([&] {
    merge_state(ConstTensorView(wide.data(), DType::f32, Device::cuda, {2, 1, 600}), ConstTensorView(small_lse.data(), DType::f32, Device::cuda, {2, 1}),
                ConstTensorView(wide.data(), DType::f32, Device::cuda, {2, 1, 600}), ConstTensorView(small_lse.data(), DType::f32, Device::cuda, {2, 1}),
                TensorView{wide_out.data(), DType::f32, Device::cuda, {2, 1, 600}}, TensorView{small_out_lse.data(), DType::f32, Device::cuda, {2, 1}});
  },
               ErrorCode::unsupported, "head_dim above 512");
}

}  // namespace
}  // namespace chunktree
