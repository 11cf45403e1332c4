// The merge primitives (chunktree/merge.hpp) on either backend, for the merge cases both must pass
// (tests/backends/merge_test.cpp) and the backend tests of their own. The primitives pick the
// backend from the tensors' device, so all a test needs is states in the backend's memory, outputs
// poisoned before each call, and the results read back to the host.
#pragma once

#include <cuda_runtime.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "chunktree/merge.hpp"
#include "support/backend.hpp"
#include "support/device_buffer.hpp"
#include "support/levels.hpp"
#include "support/merge_states.hpp"

namespace chunktree::testing {

// States (o in their dtype, lse in f32) read back to the host.
struct HostStates {
  Blob o;
  std::vector<float> lse;
};

inline bool same_bits(const HostStates& a, const HostStates& b) { return same_bits(a.o, b.o) && same_bits(a.lse, b.lse); }

// States in the backend's memory: host vectors on the CPU, device buffers on the GPU. The views
// may be written through (an output, or a state merged in place).
class BackendStates {
 public:
  // Copies of o and lse.
  BackendStates(Backend backend, const Blob& o, const std::vector<float>& lse) : backend_(backend), dtype_(o.dtype), o_numel_(o.numel) {
    if (backend == Backend::cpu) {
      host_ = HostStates{o, lse};
      return;
    }
    device_o_ = device_copy(o.data(), o.bytes());
    device_lse_ = device_copy(lse.data(), lse.size() * sizeof(float));
  }

  // Outputs of `dtype` for one merged state per token and head, poisoned.
  BackendStates(Backend backend, DType dtype, std::int64_t tokens, int heads, int head_dim)
      : backend_(backend), dtype_(dtype), o_numel_(tokens * heads * head_dim) {
    const auto lse_numel = static_cast<std::size_t>(tokens * heads);
    if (backend == Backend::cpu) {
      host_ = HostStates{Blob(dtype, o_numel_), std::vector<float>(lse_numel)};
      poison();
      return;
    }
    device_o_ = std::make_unique<DeviceBuffer>(static_cast<std::size_t>(o_numel_) * dtype_size(dtype));  // poisoned on creation
    device_lse_ = std::make_unique<DeviceBuffer>(lse_numel * sizeof(float));
  }

  TensorView o(std::vector<std::int64_t> shape) {
    return TensorView{backend_ == Backend::cpu ? host_.o.data() : device_o_->data(), dtype_, device_of(backend_), std::move(shape)};
  }
  TensorView lse(std::vector<std::int64_t> shape) {
    return TensorView{backend_ == Backend::cpu ? static_cast<void*>(host_.lse.data()) : device_lse_->data(), DType::f32, device_of(backend_),
                      std::move(shape)};
  }

  // All bits set, as DeviceBuffer poisons: NaN in every state dtype, so that an unwritten element
  // fails every value check.
  void poison() {
    if (backend_ == Backend::cuda) {
      device_o_->poison();
      device_lse_->poison();
      return;
    }
    std::fill(host_.o.words.begin(), host_.o.words.end(), 0xffffffffu);
    std::memset(host_.lse.data(), 0xff, host_.lse.size() * sizeof(float));
  }

  // o and lse as they are now (on the GPU, after all queued work: download synchronises first).
  HostStates read() const {
    if (backend_ == Backend::cpu) return host_;
    HostStates states{Blob(dtype_, o_numel_), device_lse_->download<float>()};
    EXPECT_EQ(cudaMemcpy(states.o.data(), device_o_->data(), states.o.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    return states;
  }

 private:
  Backend backend_;
  DType dtype_;
  std::int64_t o_numel_;
  HostStates host_;                           // CPU
  std::unique_ptr<DeviceBuffer> device_o_;    // CUDA
  std::unique_ptr<DeviceBuffer> device_lse_;  // CUDA
};

// merge_states of o [tokens, parts, heads, head_dim] and lse [tokens, parts, heads], copied into
// the backend's memory, into poisoned outputs of out_dtype, read back.
inline HostStates merge_states_on(Backend backend, const Blob& o, const std::vector<float>& lse, std::int64_t tokens, int parts, int heads,
                                  int head_dim, DType out_dtype) {
  BackendStates in(backend, o, lse);
  BackendStates out(backend, out_dtype, tokens, heads, head_dim);
  merge_states(in.o({tokens, parts, heads, head_dim}), in.lse({tokens, parts, heads}), out.o({tokens, heads, head_dim}), out.lse({tokens, heads}));
  return out.read();
}

}  // namespace chunktree::testing
