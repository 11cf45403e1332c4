// One attention call on either backend, and its check against the fp64 reference, for the tests
// that run the same cases on both (tests/backends/) and the backend tests of their own.
#pragma once

#include <cuda_runtime.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/reference.hpp"
#include "harness/random.hpp"
#include "support/device_buffer.hpp"
#include "support/shape.hpp"
#include "support/workload.hpp"

namespace chunktree::testing {

enum class Backend { cpu, cuda };

inline std::string to_string(Backend backend) { return backend == Backend::cpu ? "cpu" : "cuda"; }
inline Device device_of(Backend backend) { return backend == Backend::cpu ? Device::cpu : Device::cuda; }
inline void PrintTo(Backend backend, std::ostream* stream) { *stream << to_string(backend); }  // gtest's name for a parameter

struct Outputs {
  std::vector<float> out;               // [batch, q_heads, head_dim], as float whatever the stored dtype
  std::vector<float> lse;               // [batch, q_heads]
  std::vector<std::uint16_t> out_bits;  // out as stored when 16-bit, for bitwise comparisons
};

// q for every live sequence, random and representable in the cache's dtype.
inline std::vector<float> random_queries(const Workload& w, const Shape& shape, harness::Random& random) {
  std::vector<float> q(w.seqs.size() * static_cast<std::size_t>(shape.q_heads * shape.head_dim));
  for (float& value : q) value = round_to(shape.dtype, static_cast<float>(random.normal()));
  return q;
}

// What the outputs hold before a call: NaN bits (an unwritten output fails every value check), or
// zeros (for the NaN checks: an unwritten output cannot pass for a propagated NaN).
enum class Fill { nan, zero };

// attend() of `plan` on every live sequence into filled outputs. The CPU backend reads q as f32, the
// CUDA backend in the cache's dtype (the same values: q is representable in it).
inline Outputs run_attention(Backend backend, const Workload& w, const Plan& plan, const Shape& shape, const std::vector<float>& q,
                             DType out_dtype = DType::f32, Fill fill = Fill::nan) {
  const auto batch = static_cast<std::int64_t>(w.seqs.size());
  const std::vector<std::int64_t> q_shape{batch, shape.q_heads, shape.head_dim};
  const std::vector<std::int64_t> lse_shape{batch, shape.q_heads};
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  Outputs outputs;
  if (backend == Backend::cpu) {
    params.num_threads = 2;
    const float filler = fill == Fill::nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
    std::vector<float> out(q.size(), filler);
    std::vector<std::uint16_t> out16(q.size(), fill == Fill::nan ? 0xffff : 0);
    outputs.lse.assign(static_cast<std::size_t>(batch * shape.q_heads), filler);
    const TensorView out_view{out_dtype == DType::f32 ? static_cast<void*>(out.data()) : out16.data(), out_dtype, Device::cpu, q_shape};
    cpu::attend(w.cache, plan, 0, ConstTensorView(q.data(), DType::f32, Device::cpu, q_shape), out_view,
                TensorView{outputs.lse.data(), DType::f32, Device::cpu, lse_shape}, params);
    if (out_dtype == DType::f32) {
      outputs.out = std::move(out);
    } else {
      outputs.out_bits = std::move(out16);
    }
  } else {
    std::vector<std::uint16_t> q16(q.size());
    for (std::size_t i = 0; i < q.size(); ++i) q16[i] = shape.dtype == DType::bf16 ? float_to_bf16(q[i]) : float_to_fp16(q[i]);
    DeviceBuffer q_device(q16.size() * 2);
    q_device.upload(q16);
    DeviceBuffer out_device(q.size() * dtype_size(out_dtype));  // NaN bits
    DeviceBuffer lse_device(static_cast<std::size_t>(batch * shape.q_heads) * sizeof(float));
    if (fill == Fill::zero) {
      EXPECT_EQ(cudaMemset(out_device.data(), 0, out_device.bytes()), cudaSuccess);
      EXPECT_EQ(cudaMemset(lse_device.data(), 0, lse_device.bytes()), cudaSuccess);
    }
    const cuda::DevicePlan device_plan(w.cache, plan, params);
    cuda::attend(w.cache, device_plan, 0, ConstTensorView(q_device.data(), shape.dtype, Device::cuda, q_shape),
                 TensorView{out_device.data(), out_dtype, Device::cuda, q_shape}, TensorView{lse_device.data(), DType::f32, Device::cuda, lse_shape});
    outputs.lse = lse_device.download<float>();
    if (out_dtype == DType::f32) {
      outputs.out = out_device.download<float>();
    } else {
      outputs.out_bits = out_device.download<std::uint16_t>();
    }
  }
  for (std::uint16_t bits : outputs.out_bits) outputs.out.push_back(load_element(&bits, out_dtype, 0));
  return outputs;
}

// Every sequence's output against the fp64 reference over KV recomputed from its tokens (never read
// back from the cache). The CPU backend is held element by element (2e-5 in f32; the rounding of a
// 16-bit out), the GPU's to a relative L2 error of 1e-2 per sequence and lse to 1e-3 (tensor-core
// products of bf16 P and V).
inline void expect_matches_reference(Backend backend, const Workload& w, const Shape& shape, const std::vector<float>& q, const Outputs& got,
                                     DType out_dtype = DType::f32) {
  const std::size_t per_seq = static_cast<std::size_t>(shape.q_heads * shape.head_dim);
  const double scale = 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
  const double element_tolerance = out_dtype == DType::f32 ? 2e-5 : (out_dtype == DType::bf16 ? 8e-3 : 1e-3);
  const double lse_tolerance = backend == Backend::cpu ? 2e-5 : 1e-3;
  for (std::size_t s = 0; s < w.seqs.size(); ++s) {
    const std::vector<float> k = w.expected_kv(s, 0);
    const std::vector<float> v = w.expected_kv(s, 1);
    std::vector<double> expected(per_seq);
    std::vector<double> expected_lse(static_cast<std::size_t>(shape.q_heads));
    reference::attention(&q[s * per_seq], shape.q_heads, k.data(), v.data(), static_cast<std::int64_t>(w.tokens[s].size()), shape.kv_heads,
                         shape.head_dim, scale, expected.data(), expected_lse.data());
    double error = 0.0;
    double norm = 0.0;
    for (std::size_t i = 0; i < per_seq; ++i) {
      const double value = got.out[s * per_seq + i];
      ASSERT_TRUE(std::isfinite(value)) << "sequence " << s << " element " << i << " not written";
      if (backend == Backend::cpu) {
        ASSERT_NEAR(value, expected[i], element_tolerance * std::max(1.0, std::abs(expected[i]))) << "sequence " << s << " element " << i;
      }
      error += (value - expected[i]) * (value - expected[i]);
      norm += expected[i] * expected[i];
    }
    if (backend == Backend::cuda) {
      ASSERT_LE(std::sqrt(error / norm), 1e-2) << "sequence " << s << " of " << w.seqs.size() << ", " << w.tokens[s].size() << " tokens";
    }
    for (int h = 0; h < shape.q_heads; ++h) {
      const double e = expected_lse[static_cast<std::size_t>(h)];
      ASSERT_NEAR(got.lse[s * static_cast<std::size_t>(shape.q_heads) + static_cast<std::size_t>(h)], e, lse_tolerance * std::max(1.0, std::abs(e)))
          << "sequence " << s << " head " << h;
    }
  }
}

// A plan of the workload with `options` and random q, run and checked.
inline void check_workload(Backend backend, const Workload& w, const Shape& shape, harness::Random& random, const PlanOptions& options = {},
                           DType out_dtype = DType::f32) {
  const std::vector<float> q = random_queries(w, shape, random);
  const Plan plan = make_plan(w.cache, w.seqs, options);
  expect_matches_reference(backend, w, shape, q, run_attention(backend, w, plan, shape, q, out_dtype), out_dtype);
}

}  // namespace chunktree::testing
