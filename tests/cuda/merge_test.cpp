// The merge primitives (chunktree/merge.hpp) where only the CUDA backend has something to show:
// the GPU's merge against the CPU's, and the checks of device pointers and of the GPU's head_dim
// limit (label gpu; skipped where no Hopper GPU is visible). The cases both backends pass are in
// tests/backends/merge_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "chunktree/device.hpp"
#include "chunktree/merge.hpp"
#include "support/backend_merge.hpp"
#include "support/device_buffer.hpp"
#include "support/expect_error.hpp"
#include "support/merge_states.hpp"

namespace chunktree {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

using testing::Backend;
using testing::DeviceBuffer;
using testing::expect_error;

TEST(CudaMerge, MatchesTheCpuMerge) {
  REQUIRE_HOPPER();
  harness::Random random(3300);
  const std::int64_t tokens = 32;
  const int parts = 5;
  const int heads = 8;
  const int head_dim = 128;
  const testing::RandomStates s = testing::random_states(random, tokens, parts, heads, head_dim, DType::f32, 0.2, 0.05);
  const testing::HostStates cpu = testing::merge_states_on(Backend::cpu, s.o, s.lse, tokens, parts, heads, head_dim, DType::f32);
  const testing::HostStates gpu = testing::merge_states_on(Backend::cuda, s.o, s.lse, tokens, parts, heads, head_dim, DType::f32);
  for (std::int64_t i = 0; i < gpu.o.numel; ++i) {
    ASSERT_NEAR(gpu.o.get(i), cpu.o.get(i), 1e-5 * std::max(1.0f, std::abs(gpu.o.get(i)))) << i;
  }
  for (std::size_t i = 0; i < gpu.lse.size(); ++i) {
    if (std::isinf(cpu.lse[i])) {
      ASSERT_EQ(gpu.lse[i], cpu.lse[i]) << i;
    } else {
      ASSERT_NEAR(gpu.lse[i], cpu.lse[i], 1e-5 * std::max(1.0f, std::abs(cpu.lse[i]))) << i;
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
               ErrorCode::invalid_argument, "b_o is in cpu memory; expected it in cuda memory");
  expect_error([&] { merge_state(o_v, ConstTensorView(host_lse.data(), DType::f32, Device::cpu, {2, 3}), o_v, lse_v, out_v, out_lse_v); },
               ErrorCode::invalid_argument, "a_lse is in cpu memory");
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
