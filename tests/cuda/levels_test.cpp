// The levels API where only the CUDA backend has something to show (label gpu; skipped where no
// Hopper GPU is visible): shared segments wide enough for the wgmma kernel's tiles, a Hydragen-like
// prompt, a LevelsPlan reused over new contents and on a caller's stream, and what only the GPU
// checks (device memory, alignment, bf16 or f16 matching q). The cases both backends pass are in
// tests/backends/levels_test.cpp.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "support/backend_levels.hpp"
#include "support/device_buffer.hpp"
#include "support/expect_error.hpp"

namespace chunktree::testing {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

constexpr Backend kCuda = Backend::cuda;

struct Heads {
  int q_heads;
  int kv_heads;
  int head_dim;
  DType dtype;
};

// A shared segment whose query rows (sequences × query tokens × GQA group) exceed one 64-row
// tile runs on the wgmma kernel (head dims 64 and 128): row counts around the 128-row tile,
// segments on and off step boundaries, contiguous and paged; a second level splits the rows.
TEST(CudaLevels, WideSharedSegmentsOnWgmmaTiles) {
  REQUIRE_HOPPER();
  harness::Random random(29);
  const Heads configs[] = {{1, 1, 64, DType::bf16}, {2, 2, 128, DType::f16}, {8, 2, 128, DType::bf16}, {4, 1, 256, DType::bf16}};
  int run = 0;
  for (const Heads& config : configs) {
    const int group = config.q_heads / config.kv_heads;
    for (int queries : {1, 4}) {
      for (int query_rows : {65, 127, 128, 129, 264}) {
        for (int length : {1, 63, 65, 200}) {
          const std::int64_t seqs = (query_rows + queries * group - 1) / (queries * group);
          HostLevels host = empty_levels(seqs, queries, config.kv_heads, config.head_dim, config.dtype);
          host.levels = {{HostShared{run % 2 == 0 ? contiguous(random, host, length, 3) : paged(random, host, length, 7, 2), 0, seqs}}};
          if (seqs > 1 && run % 3 == 0) {
            host.levels.push_back({HostShared{contiguous(random, host, 70), 0, seqs / 2}, HostShared{paged(random, host, 33, 16), seqs / 2, seqs}});
          }
          for (std::int64_t s = 0; s < seqs; ++s) {
            const std::int64_t own = queries + random.integer(0, 5);
            host.own.push_back(queries == 1 && s % 3 == 0 ? HostSegment{} : contiguous(random, host, own));
          }
          check_levels(kCuda, host, config.q_heads, random, DType::f32, LevelsCallOptions{.pack_own_on_device = run % 2 == 0});
          ++run;
        }
      }
    }
  }
}

// Hydragen's shape: one long shared prompt read by hundreds of sequences, 8 q heads on one kv head.
TEST(CudaLevels, HydragenLikeSharedPrompt) {
  REQUIRE_HOPPER();
  harness::Random random(31);
  for (int queries : {1, 4}) {
    for (int page_size : {0, 16}) {
      const std::int64_t seqs = queries == 1 ? 300 : 100;
      HostLevels host = empty_levels(seqs, queries, 1, 128, DType::bf16);
      host.levels = {{HostShared{page_size == 0 ? contiguous(random, host, 1000) : paged(random, host, 1000, page_size, 5), 0, seqs}}};
      for (std::int64_t s = 0; s < seqs; ++s) host.own.push_back(contiguous(random, host, queries + random.integer(0, 40)));
      check_levels(kCuda, host, 8, random, DType::bf16, LevelsCallOptions{.pack_own_on_device = page_size != 0});
    }
  }
}

// A plan keeps the KV's addresses, not its contents: new q and new KV values in the same buffers
// give the new result; repeated calls give the same bits.
TEST(CudaLevels, PlanIsReusableAndDeterministic) {
  REQUIRE_HOPPER();
  harness::Random random(41);
  HostLevels host = random_levels(
      random, LevelsOptions{.num_seqs = 20, .queries = 3, .kv_heads = 2, .head_dim = 128, .num_levels = 3, .max_segment = 300, .max_own = 60});
  SCOPED_TRACE(describe(host));
  const int q_heads = 8;
  DeviceLevels device(host, /*pack_own=*/true);
  std::vector<float> q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const Blob first_q = to_blob(q, host.dtype);
  const auto q_device = device_copy(first_q.data(), first_q.bytes());
  const ConstTensorView q_view(q_device->data(), host.dtype, Device::cuda, {host.tokens(), q_heads, host.head_dim});
  const cuda::LevelsPlan plan(device.levels, q_view);
  const Outputs first = attend_levels_on_device(plan, q_view, DType::bf16);
  expect_levels_match(kCuda, host, q, q_heads, first, DType::bf16);
  for (int again = 0; again < 10; ++again) {
    SCOPED_TRACE(::testing::Message() << "run " << again);
    expect_same_bits(first, attend_levels_on_device(plan, q_view, DType::bf16));
  }
  // New contents in the same buffers.
  q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const Blob new_q = to_blob(q, host.dtype);
  CHUNKTREE_TEST_CUDA(cudaMemcpy(q_device->data(), new_q.data(), new_q.bytes(), cudaMemcpyHostToDevice));
  host.for_each_segment([&](HostSegment& segment) { refill(segment, random, host.dtype); });
  device.refresh(host);
  expect_levels_match(kCuda, host, q, q_heads, attend_levels_on_device(plan, q_view, DType::f32));
  // On a stream of the caller's.
  cudaStream_t stream = nullptr;
  CHUNKTREE_TEST_CUDA(cudaStreamCreate(&stream));
  const Outputs on_stream = attend_levels_on_device(plan, q_view, DType::f32, /*with_lse=*/true, Fill::nan, stream);
  CHUNKTREE_TEST_CUDA(cudaStreamDestroy(stream));
  expect_levels_match(kCuda, host, q, q_heads, on_stream);
}

// What only the GPU checks: device memory, 16-byte alignment, bf16 or f16 KV matching q, and in
// attend_levels q, out and lse as the plan was made for (the checks both backends share are
// BackendLevelsErrors.*).
TEST(CudaLevels, ErrorsAreClear) {
  REQUIRE_HOPPER();
  harness::Random random(47);
  const HostLevels host = levels_to_break(random);
  const DeviceLevels device(host, false);
  const Blob q_blob = to_blob(random_queries(random, 4, 4, 64, DType::bf16), DType::bf16);
  const auto q_device = device_copy(q_blob.data(), q_blob.bytes());
  const ConstTensorView q_view(q_device->data(), DType::bf16, Device::cuda, {4, 4, 64});
  DeviceBuffer out(4 * 4 * 64 * 4);
  DeviceBuffer lse(4 * 4 * 4);
  const TensorView out_view{out.data(), DType::f32, Device::cuda, {4, 4, 64}};
  const TensorView lse_view{lse.data(), DType::f32, Device::cuda, {4, 4}};
  const cuda::LevelsPlan plan(device.levels, q_view);
  EXPECT_NO_THROW(cuda::attend_levels(plan, q_view, out_view, lse_view));
  CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());

  auto expect_plan_error = [&](const std::function<void(Levels&)>& change, const std::string& fragment) {
    Levels levels = device.levels;
    change(levels);
    expect_error([&] { cuda::LevelsPlan bad(levels, q_view); }, ErrorCode::invalid_argument, fragment);
  };
  std::vector<std::uint16_t> host_k(3 * 2 * 64);
  expect_plan_error([&](Levels& l) { l.own[0].k.data = host_k.data(); }, "own[0].k is labelled as CUDA memory but its pointer is not device memory");
  expect_plan_error([](Levels& l) { l.levels[0][0].kv.v.data = static_cast<const char*>(l.levels[0][0].kv.v.data) + 8; },
                    "level 0 segment 0.v must be 16-byte aligned");
  expect_plan_error([](Levels& l) { l.own[1].k.data = static_cast<const char*>(l.own[1].k.data) + 2; }, "own[1].k must be 16-byte aligned");
  expect_error([&] { cuda::LevelsPlan bad(device.levels, ConstTensorView(q_device->data(), DType::f16, Device::cuda, {4, 4, 64})); },
               ErrorCode::invalid_argument, "q is f16 but the KV is bf16; they must match");
  {  // f32 KV
    HostLevels f32 = empty_levels(1, 1, 2, 64, DType::f32);
    f32.own.push_back(contiguous(random, f32, 4));
    const DeviceLevels f32_device(f32, false);
    std::vector<float> q32(4 * 64, 0.5f);
    const auto q32_device = device_copy(q32.data(), q32.size() * sizeof(float));
    expect_error([&] { cuda::LevelsPlan bad(f32_device.levels, ConstTensorView(q32_device->data(), DType::f32, Device::cuda, {1, 4, 64})); },
                 ErrorCode::invalid_argument, "the CUDA backend runs bf16 or f16");
  }
  // attend_levels: q, out and lse as the plan was made for, in device memory.
  expect_error([&] { cuda::attend_levels(plan, ConstTensorView(q_device->data(), DType::bf16, Device::cuda, {2, 4, 64}), out_view, lse_view); },
               ErrorCode::invalid_argument, "q has shape [2, 4, 64]; expected [4, 4, 64]");
  expect_error([&] { cuda::attend_levels(plan, ConstTensorView(q_device->data(), DType::f16, Device::cuda, {4, 4, 64}), out_view, lse_view); },
               ErrorCode::invalid_argument, "q has dtype f16");
  std::vector<std::uint16_t> host_q(4 * 4 * 64);
  expect_error([&] { cuda::attend_levels(plan, ConstTensorView(host_q.data(), DType::bf16, Device::cuda, {4, 4, 64}), out_view, lse_view); },
               ErrorCode::invalid_argument, "not device memory");
  expect_error([&] { cuda::attend_levels(plan, q_view, TensorView{out.data(), DType::f32, Device::cuda, {4, 4, 32}}, lse_view); },
               ErrorCode::invalid_argument, "out has shape [4, 4, 32]");
  expect_error([&] { cuda::attend_levels(plan, q_view, out_view, TensorView{lse.data(), DType::f32, Device::cuda, {2, 4}}); },
               ErrorCode::invalid_argument, "lse has shape [2, 4]; expected [4, 4]");
  std::vector<float> host_out(4 * 4 * 64);
  expect_error([&] { cuda::attend_levels(plan, q_view, TensorView{host_out.data(), DType::f32, Device::cuda, {4, 4, 64}}, lse_view); },
               ErrorCode::invalid_argument, "not device memory");
  DeviceBuffer wide_q(4 * 4 * 64 * 2 + 16);
  expect_error([&] {
    cuda::attend_levels(plan, ConstTensorView(static_cast<char*>(wide_q.data()) + 2, DType::bf16, Device::cuda, {4, 4, 64}), out_view, lse_view);
  },
               ErrorCode::invalid_argument, "aligned");
}

}  // namespace
}  // namespace chunktree::testing
