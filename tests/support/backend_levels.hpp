// One levels call (chunktree/levels.hpp) on either backend, for the tests that run the same levels
// cases on both (tests/backends/levels_test.cpp) and the backend tests of their own: host levels
// in the backend's memory, the call into filled outputs, and the check of every query token
// against the fp64 reference with the backend's tolerances (support/backend.hpp).
#pragma once

#include <cuda_runtime.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/levels.hpp"
#include "support/backend.hpp"
#include "support/device_buffer.hpp"
#include "support/levels.hpp"

namespace chunktree::testing {

// Host levels in device memory: each segment in its own allocation, or (pack_own) every own
// part in one allocation at 16-byte-aligned offsets, as an engine's per-sequence KV would be.
struct DeviceLevels {
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<std::pair<void*, void*>> addresses;  // K and V of every segment, in HostLevels::for_each_segment order
  Levels levels;

  DeviceLevels(const HostLevels& host, bool pack_own) {
    levels.queries_per_seq = host.queries;
    auto own_allocation = [&](const HostSegment& segment) {
      if (segment.length == 0) {
        addresses.emplace_back(nullptr, nullptr);
        return segment.view(Device::cuda);
      }
      buffers.push_back(device_copy(segment.k.data(), segment.k.bytes()));
      buffers.push_back(device_copy(segment.v.data(), segment.v.bytes()));
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
  void refresh(const HostLevels& host) {
    std::size_t i = 0;
    host.for_each_segment([&](const HostSegment& segment) {
      const auto [k, v] = addresses[i++];
      if (segment.length == 0) return;
      EXPECT_EQ(cudaMemcpy(k, segment.k.data(), segment.k.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
      EXPECT_EQ(cudaMemcpy(v, segment.v.data(), segment.v.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    });
  }
};

// Outputs of one call as `out` and `lse` hold them, read back from the host or the device.
inline Outputs outputs_of(const void* out, DType out_dtype, std::int64_t numel, std::vector<float> lse) {
  Outputs outputs;
  outputs.lse = std::move(lse);
  if (out_dtype != DType::f32) {
    const auto* bits = static_cast<const std::uint16_t*>(out);
    outputs.out_bits.assign(bits, bits + numel);
  }
  for (std::int64_t i = 0; i < numel; ++i) outputs.out.push_back(load_element(out, out_dtype, i));
  return outputs;
}

// cuda::attend_levels of `plan` into fresh device outputs, filled as `fill` says (NaN bits or
// zeros) and read back; lse passed only when with_lse (else it is read back as filled); on
// `stream`, synchronised before the read, or on the default stream.
inline Outputs attend_levels_on_device(const cuda::LevelsPlan& plan, const ConstTensorView& q, DType out_dtype, bool with_lse = true,
                                       Fill fill = Fill::nan, cudaStream_t stream = nullptr) {
  const std::int64_t tokens = q.shape[0];
  const auto q_heads = static_cast<int>(q.shape[1]);
  const std::int64_t numel = tokens * q_heads * q.shape[2];
  DeviceBuffer out(static_cast<std::size_t>(numel) * dtype_size(out_dtype));  // NaN bits
  DeviceBuffer lse(static_cast<std::size_t>(tokens * q_heads) * sizeof(float));
  if (fill == Fill::zero) {
    EXPECT_EQ(cudaMemset(out.data(), 0, out.bytes()), cudaSuccess);
    EXPECT_EQ(cudaMemset(lse.data(), 0, lse.bytes()), cudaSuccess);
  }
  const TensorView lse_view = with_lse ? TensorView{lse.data(), DType::f32, Device::cuda, {tokens, q_heads}} : TensorView{};
  cuda::attend_levels(plan, q, TensorView{out.data(), out_dtype, Device::cuda, q.shape}, lse_view, stream);
  if (stream != nullptr) EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  const std::vector<std::uint8_t> out_bytes = out.download<std::uint8_t>();  // synchronises first
  return outputs_of(out_bytes.data(), out_dtype, numel, lse.download<float>());
}

// How a LevelsCall runs where the backends have a choice of their own.
struct LevelsCallOptions {
  AttentionParams params;               // on the CPU, num_threads 0 means 2
  bool pack_own_on_device = false;      // CUDA: every own part in one allocation (DeviceLevels)
  DType cpu_q_dtype = DType::f32;       // CPU: q's dtype (the CUDA backend takes q in the KV's dtype only)
};

// A levels call's fixed parts in the backend's memory (the KV and q; on the GPU, the LevelsPlan
// too, as a caller reuses it), run as often as a test likes into fresh filled outputs.
class LevelsCall {
 public:
  LevelsCall(Backend backend, const HostLevels& host, const std::vector<float>& q, int q_heads, const LevelsCallOptions& options = {})
      : backend_(backend), params_(options.params) {
    const std::vector<std::int64_t> q_shape{host.tokens(), q_heads, host.head_dim};
    if (backend == Backend::cpu) {
      if (params_.num_threads == 0) params_.num_threads = 2;
      levels_ = host.view();
      q_blob_ = to_blob(q, options.cpu_q_dtype);
      q_ = ConstTensorView(q_blob_.data(), options.cpu_q_dtype, Device::cpu, q_shape);
      return;
    }
    device_ = std::make_unique<DeviceLevels>(host, options.pack_own_on_device);
    levels_ = device_->levels;
    const Blob q_blob = to_blob(q, host.dtype);
    q_device_ = device_copy(q_blob.data(), q_blob.bytes());
    q_ = ConstTensorView(q_device_->data(), host.dtype, Device::cuda, q_shape);
    plan_.emplace(levels_, q_, params_);
  }

  // The levels and q as the backend reads them (host or device memory).
  const Levels& levels() const { return levels_; }
  const ConstTensorView& q() const { return q_; }

  // The call into outputs filled as `fill` says; lse passed only when with_lse (else it comes back
  // as filled).
  Outputs run(DType out_dtype = DType::f32, bool with_lse = true, Fill fill = Fill::nan) const {
    if (backend_ == Backend::cuda) return attend_levels_on_device(*plan_, q_, out_dtype, with_lse, fill);
    const std::int64_t tokens = q_.shape[0];
    const std::int64_t lse_numel = tokens * q_.shape[1];
    Blob out(out_dtype, lse_numel * q_.shape[2]);  // NaN bits
    std::vector<float> lse(static_cast<std::size_t>(lse_numel), std::numeric_limits<float>::quiet_NaN());
    if (fill == Fill::zero) {
      std::fill(out.words.begin(), out.words.end(), 0u);
      std::fill(lse.begin(), lse.end(), 0.0f);
    }
    const TensorView lse_view = with_lse ? TensorView{lse.data(), DType::f32, Device::cpu, {tokens, q_.shape[1]}} : TensorView{};
    cpu::attend_levels(levels_, q_, TensorView{out.data(), out_dtype, Device::cpu, q_.shape}, lse_view, params_);
    return outputs_of(out.data(), out_dtype, out.numel, std::move(lse));
  }

 private:
  Backend backend_;
  AttentionParams params_;
  Levels levels_;
  ConstTensorView q_;
  Blob q_blob_;                                  // CPU
  std::unique_ptr<DeviceLevels> device_;         // CUDA
  std::unique_ptr<DeviceBuffer> q_device_;       // CUDA
  std::optional<cuda::LevelsPlan> plan_;         // CUDA
};

// Every query token of a levels call against the fp64 reference over the KV it sees, with the
// backend's tolerances; scale 0 means 1/sqrt(head_dim).
inline void expect_levels_match(Backend backend, const HostLevels& host, const std::vector<float>& q, int q_heads, const Outputs& got,
                                DType out_dtype = DType::f32, double scale = 0.0) {
  std::vector<double> expected;
  std::vector<double> expected_lse;
  host.reference(q, q_heads, scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(host.head_dim)) : scale, expected, expected_lse);
  expect_close(backend, expected, expected_lse, got, q_heads, host.head_dim, out_dtype, [&](std::size_t token) {
    return "sequence " + std::to_string(token / static_cast<std::size_t>(host.queries)) + " query token " +
           std::to_string(token % static_cast<std::size_t>(host.queries));
  });
}

// The levels and a random q in the backend's memory, one call into poisoned outputs, checked.
inline void check_levels(Backend backend, const HostLevels& host, int q_heads, harness::Random& random, DType out_dtype = DType::f32,
                         const LevelsCallOptions& options = {}) {
  SCOPED_TRACE(::testing::Message() << "q_heads " << q_heads << " kv_heads " << host.kv_heads << " d " << host.head_dim << " "
                                    << to_string(host.dtype) << " out " << to_string(out_dtype) << " cpu q " << to_string(options.cpu_q_dtype)
                                    << (options.pack_own_on_device ? " packed own" : "") << ": " << describe(host));
  const std::vector<float> q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const LevelsCall call(backend, host, q, q_heads, options);
  expect_levels_match(backend, host, q, q_heads, call.run(out_dtype), out_dtype);
}

// A valid call (2 sequences, 2 query tokens each, 2 kv heads, d 64, bf16; 4 q heads, so q is
// [4, 4, 64]) that the error tests break in one place each: level 0 one contiguous segment of 5
// tokens read by both sequences, level 1 one of 7 tokens in pages of 4 (a pool of 3) read by
// sequence 1, own KV of 3 and 2 tokens.
inline HostLevels levels_to_break(harness::Random& random) {
  HostLevels host = empty_levels(2, 2, 2, 64, DType::bf16);
  host.levels = {{HostShared{contiguous(random, host, 5, 1), 0, 2}}, {HostShared{paged(random, host, 7, 4, 1), 1, 2}}};
  host.own = {contiguous(random, host, 3), contiguous(random, host, 2)};
  return host;
}

}  // namespace chunktree::testing
