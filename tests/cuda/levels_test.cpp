// The levels API (cuda::LevelsPlan + cuda::attend_levels) and multi-token queries in the
// prefix-cache path, on the CUDA backend against the fp64 reference (label gpu; skipped where no
// Hopper GPU is visible). The merge primitives on device tensors are in merge_test.cpp.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "support/device_buffer.hpp"
#include "support/levels.hpp"
#include "support/multi_query.hpp"
#include "support/shape.hpp"

namespace chunktree {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

using testing::Blob;
using testing::DeviceBuffer;
using testing::HostLevels;
using testing::HostSegment;
using testing::HostShared;
using testing::LevelsOptions;
using testing::Shape;

std::unique_ptr<DeviceBuffer> device_copy(const void* data, std::size_t bytes) {
  auto buffer = std::make_unique<DeviceBuffer>(bytes);
  EXPECT_EQ(cudaMemcpy(buffer->data(), data, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  return buffer;
}
std::unique_ptr<DeviceBuffer> device_copy(const Blob& blob) { return device_copy(blob.data(), blob.bytes()); }

// A blob's worth of device memory read back into a host blob of the same dtype.
Blob download(const DeviceBuffer& buffer, DType dtype, std::int64_t numel) {
  Blob blob(dtype, numel);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(blob.data(), buffer.data(), blob.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  return blob;
}

// ---- Levels ----------------------------------------------------------------------------------

// Host levels in device memory: each segment in its own allocation, or (pack_own) every own
// part in one allocation at 16-byte-aligned offsets, as an engine's per-sequence KV would be.
struct DeviceLevels {
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<std::pair<void*, void*>> addresses;  // K and V of every segment, in HostLevels::for_each_segment order
  Levels levels;

  DeviceLevels(HostLevels& host, bool pack_own) {
    levels.queries_per_seq = host.queries;
    auto own_allocation = [&](const HostSegment& segment) {
      if (segment.length == 0) {
        addresses.emplace_back(nullptr, nullptr);
        return segment.view(Device::cuda);
      }
      buffers.push_back(device_copy(segment.k));
      buffers.push_back(device_copy(segment.v));
      addresses.emplace_back(buffers[buffers.size() - 2]->data(), buffers.back()->data());
      return segment.view(Device::cuda, addresses.back().first, addresses.back().second);
    };
    for (const auto& level : host.levels) {
      levels.levels.emplace_back();
      for (const HostShared& shared : level) levels.levels.back().push_back(SharedSegment{own_allocation(shared.kv), shared.seq_begin, shared.seq_end});
    }
    if (!pack_own) {
      for (const HostSegment& segment : host.own) levels.own.push_back(own_allocation(segment));
      return;
    }
    std::vector<std::size_t> offsets;
    std::size_t total = 0;
    for (const HostSegment& segment : host.own) {
      offsets.push_back(total);
      total += (segment.k.bytes() + 15) / 16 * 16 + 16;  // a gap: the parts are not back to back
    }
    buffers.push_back(std::make_unique<DeviceBuffer>(total));
    buffers.push_back(std::make_unique<DeviceBuffer>(total));
    auto* k_base = static_cast<char*>(buffers[buffers.size() - 2]->data());
    auto* v_base = static_cast<char*>(buffers.back()->data());
    for (std::size_t s = 0; s < host.own.size(); ++s) {
      const HostSegment& segment = host.own[s];
      if (segment.length == 0) {
        addresses.emplace_back(nullptr, nullptr);
        levels.own.push_back(segment.view(Device::cuda));
        continue;
      }
      addresses.emplace_back(k_base + offsets[s], v_base + offsets[s]);
      levels.own.push_back(segment.view(Device::cuda, addresses.back().first, addresses.back().second));
    }
    refresh(host);
  }

  // Copies the host segments' current contents to their device addresses.
  void refresh(HostLevels& host) {
    std::size_t i = 0;
    host.for_each_segment([&](const HostSegment& segment) {
      const auto [k, v] = addresses[i++];
      if (segment.length == 0) return;
      EXPECT_EQ(cudaMemcpy(k, segment.k.data(), segment.k.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
      EXPECT_EQ(cudaMemcpy(v, segment.v.data(), segment.v.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    });
  }
};

struct Outputs {
  std::vector<float> out;  // [tokens, q_heads, head_dim] as stored
  std::vector<float> lse;  // [tokens, q_heads]
  Blob out_blob;
};

// out and lse of one call into fresh poisoned device buffers (all bits set: NaN).
Outputs run_into_poisoned(std::int64_t tokens, int q_heads, int head_dim, DType out_dtype,
                          const std::function<void(const TensorView&, const TensorView&)>& call) {
  DeviceBuffer out(static_cast<std::size_t>(tokens * q_heads * head_dim) * dtype_size(out_dtype));
  DeviceBuffer lse(static_cast<std::size_t>(tokens * q_heads) * sizeof(float));
  call(TensorView{out.data(), out_dtype, Device::cuda, {tokens, q_heads, head_dim}}, TensorView{lse.data(), DType::f32, Device::cuda, {tokens, q_heads}});
  Outputs got;
  got.out_blob = download(out, out_dtype, tokens * q_heads * head_dim);
  for (std::int64_t i = 0; i < got.out_blob.numel; ++i) got.out.push_back(got.out_blob.get(i));
  got.lse = lse.download<float>();
  return got;
}

// Every query token against the reference, with the GPU tests' tolerances (relative L2 error of
// a token's output 1e-2, lse 1e-3).
void expect_close(const std::vector<double>& expected, const std::vector<double>& expected_lse, const Outputs& got, int q_heads, int head_dim,
                  const std::function<std::string(std::size_t)>& describe_token) {
  const std::size_t per_token = static_cast<std::size_t>(q_heads) * static_cast<std::size_t>(head_dim);
  ASSERT_EQ(got.out.size(), expected.size());
  for (std::size_t token = 0; token < expected.size() / per_token; ++token) {
    double error = 0.0;
    double norm = 0.0;
    for (std::size_t i = token * per_token; i < (token + 1) * per_token; ++i) {
      ASSERT_TRUE(std::isfinite(got.out[i])) << describe_token(token) << ": element " << i - token * per_token << " not written";
      error += (got.out[i] - expected[i]) * (got.out[i] - expected[i]);
      norm += expected[i] * expected[i];
    }
    ASSERT_LE(std::sqrt(error / norm), 1e-2) << describe_token(token);
    for (int h = 0; h < q_heads; ++h) {
      const std::size_t at = token * static_cast<std::size_t>(q_heads) + static_cast<std::size_t>(h);
      ASSERT_NEAR(got.lse[at], expected_lse[at], 1e-3 * std::max(1.0, std::abs(expected_lse[at]))) << describe_token(token) << " head " << h;
    }
  }
}

std::string describe(const HostLevels& host) {
  std::string text = std::to_string(host.num_seqs) + " seqs × " + std::to_string(host.queries) + " queries, levels:";
  for (const auto& level : host.levels) {
    text += " {";
    for (const HostShared& shared : level) {
      text += " " + std::to_string(shared.kv.length) + (shared.kv.pages.empty() ? "" : "p" + std::to_string(shared.kv.shape[1])) + "@[" +
              std::to_string(shared.seq_begin) + "," + std::to_string(shared.seq_end) + ")";
    }
    text += " }";
  }
  text += " own:";
  for (const HostSegment& own : host.own) text += " " + std::to_string(own.length) + (own.pages.empty() ? "" : "p");
  return text;
}

Outputs run_levels(const cuda::LevelsPlan& plan, const HostLevels& host, const DeviceBuffer& q, int q_heads, DType out_dtype) {
  const ConstTensorView q_view(q.data(), host.dtype, Device::cuda, {host.tokens(), q_heads, host.head_dim});
  return run_into_poisoned(host.tokens(), q_heads, host.head_dim, out_dtype,
                           [&](const TensorView& out, const TensorView& lse) { cuda::attend_levels(plan, q_view, out, lse); });
}

void expect_levels_match(const HostLevels& host, const std::vector<float>& q, int q_heads, const Outputs& got, double scale = 0.0) {
  std::vector<double> expected;
  std::vector<double> expected_lse;
  host.reference(q, q_heads, scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(host.head_dim)) : scale, expected, expected_lse);
  expect_close(expected, expected_lse, got, q_heads, host.head_dim, [&](std::size_t token) {
    return "sequence " + std::to_string(token / static_cast<std::size_t>(host.queries)) + " query token " +
           std::to_string(token % static_cast<std::size_t>(host.queries));
  });
}

// Uploads the levels and a random q, runs the GPU levels call into poisoned outputs and checks it.
void check_levels(HostLevels& host, int q_heads, harness::Random& random, DType out_dtype = DType::f32, bool pack_own = false) {
  SCOPED_TRACE(::testing::Message() << "q_heads " << q_heads << " kv_heads " << host.kv_heads << " d " << host.head_dim << " "
                                    << to_string(host.dtype) << " out " << to_string(out_dtype) << (pack_own ? " packed own" : "") << ": "
                                    << describe(host));
  const DeviceLevels device(host, pack_own);
  const std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const auto q_device = device_copy(testing::to_blob(q, host.dtype));
  const ConstTensorView q_view(q_device->data(), host.dtype, Device::cuda, {host.tokens(), q_heads, host.head_dim});
  const cuda::LevelsPlan plan(device.levels, q_view);
  expect_levels_match(host, q, q_heads, run_levels(plan, host, *q_device, q_heads, out_dtype));
}

HostLevels empty_levels(std::int64_t num_seqs, int queries, int kv_heads, int head_dim, DType dtype) {
  HostLevels host;
  host.num_seqs = num_seqs;
  host.queries = queries;
  host.kv_heads = kv_heads;
  host.head_dim = head_dim;
  host.dtype = dtype;
  return host;
}
HostSegment contiguous(harness::Random& random, const HostLevels& host, std::int64_t length, std::int64_t extra = 0) {
  return testing::random_segment(random, host.dtype, host.kv_heads, host.head_dim, length, 0, extra);
}
HostSegment paged(harness::Random& random, const HostLevels& host, std::int64_t length, int page_size, std::int64_t extra = 0) {
  return testing::random_segment(random, host.dtype, host.kv_heads, host.head_dim, length, page_size, extra);
}

struct Config {
  int q_heads;
  int kv_heads;
  int head_dim;
  DType dtype;
};

TEST(CudaLevels, MatchesTheReferenceOnRandomLevels) {
  REQUIRE_HOPPER();
  const Config configs[] = {
      {1, 1, 64, DType::bf16},  {4, 1, 128, DType::f16},  {8, 2, 256, DType::bf16}, {4, 4, 64, DType::f16},
      {8, 2, 128, DType::bf16}, {16, 4, 64, DType::bf16}, {8, 8, 256, DType::f16},
  };
  std::uint64_t seed = 2000;
  int run = 0;
  for (int queries : {1, 2, 5, 64}) {
    const std::int64_t max_seqs = queries == 1 ? 40 : (queries == 2 ? 24 : (queries == 5 ? 12 : 4));
    for (const Config& config : configs) {
      for (int round = 0; round < 2; ++round) {
        harness::Random random(++seed);
        LevelsOptions options;
        options.num_seqs = random.integer(1, max_seqs);
        options.queries = queries;
        options.kv_heads = config.kv_heads;
        options.head_dim = config.head_dim;
        options.dtype = config.dtype;
        options.num_levels = static_cast<int>(random.integer(1, 3));
        options.max_segment = queries == 64 ? 100 : (round == 0 ? 60 : 300);  // long ones get split into items
        options.max_own = queries == 64 ? 40 : 100;
        options.own = queries > 1 || round == 0;
        HostLevels host = testing::random_levels(random, options);
        const DType out_dtype = run % 3 == 0 ? DType::f32 : (run % 3 == 1 ? DType::bf16 : DType::f16);
        check_levels(host, config.q_heads, random, out_dtype, /*pack_own=*/run % 2 == 1);
        ++run;
      }
    }
  }
}

// A shared segment whose query rows (sequences × query tokens × GQA group) exceed one 64-row
// tile runs on the wgmma kernel (head dims 64 and 128): row counts around the 128-row tile,
// segments on and off step boundaries, contiguous and paged; a second level splits the rows.
TEST(CudaLevels, WideSharedSegmentsOnWgmmaTiles) {
  REQUIRE_HOPPER();
  harness::Random random(29);
  const Config configs[] = {{1, 1, 64, DType::bf16}, {2, 2, 128, DType::f16}, {8, 2, 128, DType::bf16}, {4, 1, 256, DType::bf16}};
  int run = 0;
  for (const Config& config : configs) {
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
          check_levels(host, config.q_heads, random, DType::f32, run % 2 == 0);
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
      check_levels(host, 8, random, DType::bf16, /*pack_own=*/page_size != 0);
    }
  }
}

TEST(CudaLevels, OddShapes) {
  REQUIRE_HOPPER();
  harness::Random random(37);
  for (int head_dim : {64, 128, 256}) {
    const int q_heads = 4;
    const int kv_heads = 2;
    {  // one sequence, a one-token shared segment and one own token
      HostLevels host = empty_levels(1, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 1), 0, 1}}};
      host.own.push_back(contiguous(random, host, 1));
      check_levels(host, q_heads, random);
    }
    {  // one-token segments on three levels
      HostLevels host = empty_levels(3, 2, kv_heads, head_dim, DType::f16);
      host.levels = {{HostShared{contiguous(random, host, 1), 0, 3}},
                     {HostShared{paged(random, host, 1, 16), 0, 2}},
                     {HostShared{contiguous(random, host, 1), 1, 2}, HostShared{paged(random, host, 1, 7, 2), 1, 3}}};
      for (int s = 0; s < 3; ++s) host.own.push_back(contiguous(random, host, 2 + s));
      check_levels(host, q_heads, random);
    }
    for (int queries : {2, 5, 64}) {  // own KV of exactly queries_per_seq tokens
      HostLevels host = empty_levels(2, queries, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 9), 0, 2}}};
      host.own.push_back(contiguous(random, host, queries));
      host.own.push_back(paged(random, host, queries, 7));
      check_levels(host, q_heads, random);
    }
    {  // no own KV at all
      HostLevels host = empty_levels(4, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 20), 0, 4}}, {HostShared{paged(random, host, 33, 16), 1, 3}}};
      check_levels(host, q_heads, random);
    }
    {  // some own parts empty
      HostLevels host = empty_levels(3, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 5), 0, 3}}};
      host.own = {HostSegment{}, contiguous(random, host, 4), HostSegment{}};
      check_levels(host, q_heads, random, DType::f32, /*pack_own=*/true);
    }
    {  // own KV only: causal attention over 64 query tokens, long enough to be split
      HostLevels host = empty_levels(2, 64, kv_heads, head_dim, DType::f16);
      host.own.push_back(contiguous(random, host, 64));
      host.own.push_back(paged(random, host, 700, 16, 1));
      check_levels(host, q_heads, random);
    }
    {  // odd page sizes: a page larger than its segment, pages of one token
      HostLevels host = empty_levels(2, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{paged(random, host, 5, 16), 0, 2}, HostShared{paged(random, host, 9, 1, 3), 1, 2}}};
      host.own = {paged(random, host, 3, 1), paged(random, host, 1, 16, 2)};
      check_levels(host, q_heads, random);
    }
  }
}

// A plan keeps the KV's addresses, not its contents: new q and new KV values in the same buffers
// give the new result; repeated calls give the same bits.
TEST(CudaLevels, PlanIsReusableAndDeterministic) {
  REQUIRE_HOPPER();
  harness::Random random(41);
  LevelsOptions options;
  options.num_seqs = 20;
  options.queries = 3;
  options.kv_heads = 2;
  options.head_dim = 128;
  options.num_levels = 3;
  options.max_segment = 300;
  options.max_own = 60;
  HostLevels host = testing::random_levels(random, options);
  SCOPED_TRACE(describe(host));
  const int q_heads = 8;
  DeviceLevels device(host, /*pack_own=*/true);
  std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const auto q_device = device_copy(testing::to_blob(q, host.dtype));
  const ConstTensorView q_view(q_device->data(), host.dtype, Device::cuda, {host.tokens(), q_heads, host.head_dim});
  const cuda::LevelsPlan plan(device.levels, q_view);
  const Outputs first = run_levels(plan, host, *q_device, q_heads, DType::bf16);
  expect_levels_match(host, q, q_heads, first);
  for (int again = 0; again < 10; ++again) {
    const Outputs next = run_levels(plan, host, *q_device, q_heads, DType::bf16);
    ASSERT_EQ(std::memcmp(first.out_blob.data(), next.out_blob.data(), first.out_blob.bytes()), 0) << "run " << again;
    ASSERT_EQ(std::memcmp(first.lse.data(), next.lse.data(), first.lse.size() * sizeof(float)), 0) << "run " << again;
  }
  // New contents in the same buffers.
  q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const Blob q_blob = testing::to_blob(q, host.dtype);
  CHUNKTREE_TEST_CUDA(cudaMemcpy(q_device->data(), q_blob.data(), q_blob.bytes(), cudaMemcpyHostToDevice));
  host.for_each_segment([&](HostSegment& segment) { testing::refill(segment, random, host.dtype); });
  device.refresh(host);
  expect_levels_match(host, q, q_heads, run_levels(plan, host, *q_device, q_heads, DType::f32));
  // On a stream of the caller's.
  cudaStream_t stream = nullptr;
  CHUNKTREE_TEST_CUDA(cudaStreamCreate(&stream));
  const Outputs on_stream = run_into_poisoned(host.tokens(), q_heads, host.head_dim, DType::f32, [&](const TensorView& out, const TensorView& lse) {
    cuda::attend_levels(plan, q_view, out, lse, stream);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  });
  CHUNKTREE_TEST_CUDA(cudaStreamDestroy(stream));
  expect_levels_match(host, q, q_heads, on_stream);
}

TEST(CudaLevels, ScaleAndNoLse) {
  REQUIRE_HOPPER();
  harness::Random random(43);
  LevelsOptions options;
  options.num_seqs = 9;
  options.queries = 2;
  options.kv_heads = 1;
  options.head_dim = 64;
  HostLevels host = testing::random_levels(random, options);
  const int q_heads = 4;
  const DeviceLevels device(host, false);
  const std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const auto q_device = device_copy(testing::to_blob(q, host.dtype));
  const ConstTensorView q_view(q_device->data(), host.dtype, Device::cuda, {host.tokens(), q_heads, host.head_dim});
  AttentionParams params;
  params.scale = 0.3f;
  const cuda::LevelsPlan plan(device.levels, q_view, params);
  const Outputs with_lse = run_levels(plan, host, *q_device, q_heads, DType::f32);
  expect_levels_match(host, q, q_heads, with_lse, static_cast<double>(0.3f));
  const Outputs without = run_into_poisoned(host.tokens(), q_heads, host.head_dim, DType::f32,
                                            [&](const TensorView& out, const TensorView&) { cuda::attend_levels(plan, q_view, out); });
  ASSERT_EQ(std::memcmp(with_lse.out.data(), without.out.data(), with_lse.out.size() * sizeof(float)), 0);
  for (float lse : without.lse) ASSERT_TRUE(std::isnan(lse)) << "lse was written though none was passed";
}

void expect_error(const std::function<void()>& call, ErrorCode code, const std::string& fragment) {
  SCOPED_TRACE(fragment);
  try {
    call();
    ADD_FAILURE() << "expected an error mentioning \"" << fragment << "\"";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << "message: " << error.what() << "\nexpected: " << fragment;
  }
}

TEST(CudaLevels, ErrorsAreClear) {
  REQUIRE_HOPPER();
  harness::Random random(47);
  HostLevels host = empty_levels(2, 2, 2, 64, DType::bf16);
  host.levels = {{HostShared{contiguous(random, host, 5), 0, 2}}, {HostShared{paged(random, host, 7, 4, 1), 1, 2}}};
  host.own = {contiguous(random, host, 3), contiguous(random, host, 2)};
  const DeviceLevels device(host, false);
  const auto q_device = device_copy(testing::to_blob(testing::random_queries(random, 4, 4, 64, DType::bf16), DType::bf16));
  const ConstTensorView q_view(q_device->data(), DType::bf16, Device::cuda, {4, 4, 64});
  DeviceBuffer out(4 * 4 * 64 * 4);
  DeviceBuffer lse(4 * 4 * 4);
  const TensorView out_view{out.data(), DType::f32, Device::cuda, {4, 4, 64}};
  const TensorView lse_view{lse.data(), DType::f32, Device::cuda, {4, 4}};
  const cuda::LevelsPlan plan(device.levels, q_view);
  EXPECT_NO_THROW(cuda::attend_levels(plan, q_view, out_view, lse_view));
  CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());

  auto expect_plan_error = [&](const std::function<void(Levels&)>& change, ErrorCode code, const std::string& fragment) {
    Levels levels = device.levels;
    change(levels);
    expect_error([&] { cuda::LevelsPlan bad(levels, q_view); }, code, fragment);
  };
  // The same checks as the CPU backend (shared code), on the GPU's device.
  expect_plan_error([](Levels& l) { l.levels[0][0].kv.length = 0; }, ErrorCode::invalid_argument, "level 0 segment 0 is empty");
  expect_plan_error([](Levels& l) { l.levels[1][0].seq_end = 3; }, ErrorCode::invalid_argument, "read by sequences [1, 3)");
  expect_plan_error([](Levels& l) { l.levels[1][0].kv.pages[1] = 3; }, ErrorCode::invalid_argument, "page 1 is 3; the pool has pages 0..2");
  expect_plan_error([](Levels& l) { l.own[1].length = 1; }, ErrorCode::invalid_argument, "fewer than queries_per_seq (2)");
  expect_plan_error([](Levels& l) { l.own[0].k.device = Device::cpu; }, ErrorCode::invalid_argument,
                    "own[0].k is on the cpu; this backend needs it on the cuda");
  // What only the GPU needs: device memory, 16-byte alignment, bf16 or f16 matching q.
  std::vector<std::uint16_t> host_k(3 * 2 * 64);
  expect_plan_error([&](Levels& l) { l.own[0].k.data = host_k.data(); }, ErrorCode::invalid_argument, "own[0].k is labelled as CUDA memory but its pointer is not device memory");
  expect_plan_error([](Levels& l) { l.levels[0][0].kv.v.data = static_cast<const char*>(l.levels[0][0].kv.v.data) + 8; }, ErrorCode::invalid_argument,
                    "level 0 segment 0.v must be 16-byte aligned");
  expect_plan_error([](Levels& l) { l.own[1].k.data = static_cast<const char*>(l.own[1].k.data) + 2; }, ErrorCode::invalid_argument,
                    "own[1].k must be 16-byte aligned");
  expect_error([&] { cuda::LevelsPlan bad(device.levels, ConstTensorView(q_device->data(), DType::f16, Device::cuda, {4, 4, 64})); },
               ErrorCode::invalid_argument, "q is f16 but the KV is bf16; they must match");
  expect_error([&] { cuda::LevelsPlan bad(device.levels, ConstTensorView(q_device->data(), DType::bf16, Device::cpu, {4, 4, 64})); },
               ErrorCode::invalid_argument, "q is on the cpu");
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

// ---- Multi-token queries in the prefix-cache path ---------------------------------------------

CacheConfig gpu_config(const Shape& shape, std::int64_t capacity = 4096) { return testing::cache_config(shape, Device::cuda, capacity); }

// Runs the cache path with options.queries_per_seq query tokens per sequence on the GPU and
// checks every query token against the reference over its sequence's prefix up to itself.
void check_multi_query(const testing::Workload& w, const Shape& shape, const PlanOptions& options, harness::Random& random,
                       DType out_dtype = DType::f32) {
  const int queries = options.queries_per_seq;
  SCOPED_TRACE(::testing::Message() << shape << " queries_per_seq " << queries << " min_shared_rows " << options.min_shared_rows
                                    << " max_item_tokens " << options.max_item_tokens << " out " << to_string(out_dtype));
  const auto tokens = static_cast<std::int64_t>(w.seqs.size()) * queries;
  const std::vector<float> q = testing::random_queries(random, tokens, shape.q_heads, shape.head_dim, shape.dtype);
  const auto q_device = device_copy(testing::to_blob(q, shape.dtype));
  const Plan plan = make_plan(w.cache, w.seqs, options);
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  const cuda::DevicePlan device_plan(w.cache, plan, params);
  const ConstTensorView q_view(q_device->data(), shape.dtype, Device::cuda, {tokens, shape.q_heads, shape.head_dim});
  const Outputs got = run_into_poisoned(tokens, shape.q_heads, shape.head_dim, out_dtype, [&](const TensorView& out, const TensorView& lse) {
    cuda::attend(w.cache, device_plan, 0, q_view, out, lse);
  });
  std::vector<double> expected;
  std::vector<double> expected_lse;
  testing::multi_query_reference(w, q, shape.q_heads, queries, 1.0 / std::sqrt(static_cast<double>(shape.head_dim)), expected, expected_lse);
  expect_close(expected, expected_lse, got, shape.q_heads, shape.head_dim, [&](std::size_t token) {
    const std::size_t s = token / static_cast<std::size_t>(queries);
    return "sequence " + std::to_string(s) + " of " + std::to_string(w.seqs.size()) + " (" + std::to_string(w.tokens[s].size()) +
           " tokens) query token " + std::to_string(token % static_cast<std::size_t>(queries));
  });
}

TEST(CudaMultiToken, MatchesTheReferenceOnRandomTrees) {
  REQUIRE_HOPPER();
  const Shape shapes[] = {
      {1, 1, 64, 16, DType::bf16}, {8, 2, 64, 32, DType::f16}, {4, 1, 128, 64, DType::bf16},
      {6, 3, 256, 16, DType::f16}, {16, 4, 128, 64, DType::bf16},
  };
  std::uint64_t seed = 4000;
  for (const Shape& shape : shapes) {
    for (int queries : {1, 2, 3, 8, 64}) {
      harness::Random random(++seed);
      testing::Workload w(gpu_config(shape));
      w.grow(random, queries == 64 ? 12 : 30, queries == 64 ? 100 : 150, queries % 2 == 0 ? 3 : 30);
      testing::add_query_tokens(w, random, queries);
      AttentionParams params;
      params.num_q_heads = shape.q_heads;
      PlanOptions base;
      base.queries_per_seq = queries;
      const PlanOptions suggested = cuda::plan_options(w.cache, params, base);
      ASSERT_EQ(suggested.queries_per_seq, queries);
      for (const PlanOptions& options : {PlanOptions{2, 0, queries}, PlanOptions{1, shape.chunk, queries}, PlanOptions{3, 4 * shape.chunk, queries}, suggested}) {
        check_multi_query(w, shape, options, random);
      }
    }
  }
}

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
        check_multi_query(w, shape, PlanOptions{2, 0, queries}, random);
        check_multi_query(w, shape, PlanOptions{2, shape.chunk, queries}, random);
      }
      {  // identical sequences, one of them one token longer
        testing::Workload w(gpu_config(shape));
        for (int s = 0; s < 3; ++s) w.add(tokens_of(queries + 40, 7));
        w.append(2, {9999});
        check_multi_query(w, shape, PlanOptions{2, 0, queries}, random);
        check_multi_query(w, shape, PlanOptions{1, shape.chunk, queries}, random);
      }
      {  // prefixes of one another: shorter sequences' query tokens inside the longer ones' span
        testing::Workload w(gpu_config(shape));
        for (int length : {200, 150, 120, queries + 1, queries}) w.add(tokens_of(length, 3));
        std::vector<Token> other = tokens_of(170, 3);
        other.push_back(9999);
        w.add(other);
        w.fork(1, 2);
        check_multi_query(w, shape, PlanOptions{2, 0, queries}, random);
        check_multi_query(w, shape, PlanOptions{1, shape.chunk, queries}, random);
        check_multi_query(w, shape, PlanOptions{3, 2 * shape.chunk, queries}, random, DType::bf16);
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
    check_multi_query(w, shape, cuda::plan_options(w.cache, params, base), random);
    check_multi_query(w, shape, PlanOptions{2, 128, queries}, random, DType::f16);
  }
}

TEST(CudaMultiToken, PartialStatesMatchTheCpuBackend) {
  REQUIRE_HOPPER();
  const Shape shape{4, 2, 128, 32, DType::bf16};
  const int queries = 5;
  harness::Random random(4300);
  CacheConfig cpu_config = gpu_config(shape);
  cpu_config.device = Device::cpu;
  testing::Workload on_gpu(gpu_config(shape));
  testing::Workload on_cpu(cpu_config);
  for (int s = 0; s < 6; ++s) {
    std::vector<Token> tokens(static_cast<std::size_t>(100 + 7 * s), 1);
    if (s % 2 == 1) tokens.back() = s;  // the others end inside the longest one's span
    on_gpu.add(tokens);
    on_cpu.add(tokens);
  }
  const auto tokens = static_cast<std::int64_t>(on_gpu.seqs.size()) * queries;
  const std::vector<float> q = testing::random_queries(random, tokens, shape.q_heads, shape.head_dim, shape.dtype);
  const PlanOptions options{2, 32, queries};
  const Plan gpu_plan = make_plan(on_gpu.cache, on_gpu.seqs, options);
  const Plan cpu_plan = make_plan(on_cpu.cache, on_cpu.seqs, options);
  ASSERT_EQ(gpu_plan.num_states, cpu_plan.num_states);
  const auto q_device = device_copy(testing::to_blob(q, shape.dtype));
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
  expect_error([&] { make_plan(w.cache, w.seqs, PlanOptions{2, 0, 4}); }, ErrorCode::invalid_argument,
               "batch entry 1 has 3 tokens, fewer than queries_per_seq (4)");
  const Plan plan = make_plan(w.cache, w.seqs, PlanOptions{2, 0, 3});
  AttentionParams params;
  params.num_q_heads = 4;
  const cuda::DevicePlan device_plan(w.cache, plan, params);
  DeviceBuffer q(6 * 4 * 64 * 2);
  DeviceBuffer out(6 * 4 * 64 * 4);
  DeviceBuffer lse(6 * 4 * 4);
  const ConstTensorView q_view(q.data(), DType::bf16, Device::cuda, {6, 4, 64});
  const TensorView out_view{out.data(), DType::f32, Device::cuda, {6, 4, 64}};
  const TensorView lse_view{lse.data(), DType::f32, Device::cuda, {6, 4}};
  EXPECT_NO_THROW(cuda::attend(w.cache, device_plan, 0, q_view, out_view, lse_view));
  CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, ConstTensorView(q.data(), DType::bf16, Device::cuda, {2, 4, 64}), out_view, lse_view); },
               ErrorCode::invalid_argument, "q has shape [2, 4, 64]; expected [6, 4, 64]");
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, q_view, TensorView{out.data(), DType::f32, Device::cuda, {2, 4, 64}}, lse_view); },
               ErrorCode::invalid_argument, "out has shape [2, 4, 64]; expected [6, 4, 64]");
  expect_error([&] { cuda::attend(w.cache, device_plan, 0, q_view, out_view, TensorView{lse.data(), DType::f32, Device::cuda, {2, 4}}); },
               ErrorCode::invalid_argument, "lse has shape [2, 4]; expected [6, 4]");
}

}  // namespace
}  // namespace chunktree
