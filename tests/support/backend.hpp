// One attention call on either backend, and its check against the fp64 reference, for the tests
// that run the same cases on both (tests/backends/) and the backend tests of their own.
#pragma once

#include <cuda_runtime.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "harness/random.hpp"
#include "support/device_buffer.hpp"
#include "support/levels.hpp"
#include "support/multi_query.hpp"
#include "support/shape.hpp"
#include "support/workload.hpp"

namespace chunktree::testing {

enum class Backend { cpu, cuda };

inline std::string to_string(Backend backend) { return backend == Backend::cpu ? "cpu" : "cuda"; }
inline Device device_of(Backend backend) { return backend == Backend::cpu ? Device::cpu : Device::cuda; }
inline void PrintTo(Backend backend, std::ostream* stream) { *stream << to_string(backend); }  // gtest's name for a parameter

// A test of tests/backends/, run on one backend (its parameter): skipped where that backend's
// device is not visible. on() gives the backend's own value where the backends' cases differ.
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (backend() == Backend::cuda && !hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible";
  }
  Backend backend() const { return GetParam(); }
  template <typename T>
  T on(T cpu, T cuda) const {
    return backend() == Backend::cpu ? cpu : cuda;
  }
};

// Instantiates a suite of BackendTest on the backend of the binary it is built into: the CPU
// backend in the host tests, the CUDA backend in the GPU tests (CHUNKTREE_TESTS_ON_CUDA).
#ifdef CHUNKTREE_TESTS_ON_CUDA
#define CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(suite) \
  INSTANTIATE_TEST_SUITE_P(Cuda, suite, ::testing::Values(Backend::cuda), [](const auto& info) { return to_string(info.param); })
#else
#define CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(suite) \
  INSTANTIATE_TEST_SUITE_P(Cpu, suite, ::testing::Values(Backend::cpu), [](const auto& info) { return to_string(info.param); })
#endif

struct Outputs {
  std::vector<float> out;               // [batch, q_heads, head_dim], as float whatever the stored dtype
  std::vector<float> lse;               // [batch, q_heads]
  std::vector<std::uint16_t> out_bits;  // out as stored when 16-bit, for bitwise comparisons
};

// q for every query token of every live sequence (queries_per_seq rows each), random and
// representable in the cache's dtype.
inline std::vector<float> random_queries(const Workload& w, const Shape& shape, harness::Random& random, int queries_per_seq = 1) {
  return random_queries(random, static_cast<std::int64_t>(w.seqs.size()) * queries_per_seq, shape.q_heads, shape.head_dim, shape.dtype);
}

// What the outputs hold before a call: NaN bits (an unwritten output fails every value check), or
// zeros (for the NaN checks: an unwritten output cannot pass for a propagated NaN).
enum class Fill { nan, zero };

// attend() of `plan` on every query token of every live sequence into filled outputs. The CPU
// backend reads q in cpu_q_dtype, the CUDA backend in the cache's dtype (the same values: q is
// representable in the cache's dtype).
inline Outputs run_attention(Backend backend, const Workload& w, const Plan& plan, const Shape& shape, const std::vector<float>& q,
                             DType out_dtype = DType::f32, Fill fill = Fill::nan, DType cpu_q_dtype = DType::f32) {
  const auto batch = static_cast<std::int64_t>(w.seqs.size()) * plan.queries_per_seq;
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
    const Blob q_blob = to_blob(q, cpu_q_dtype);
    cpu::attend(w.cache, plan, 0, ConstTensorView(q_blob.data(), cpu_q_dtype, Device::cpu, q_shape), out_view,
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

// out and lse of every query token (expected [tokens, q_heads, head_dim], expected_lse [tokens,
// q_heads]) against the fp64 reference. The CPU backend is held element by element (2e-5 in f32;
// the rounding of a 16-bit out), the GPU's to a relative L2 error of 1e-2 per token and lse to
// 1e-3 (tensor-core products of bf16 P and V). A head that sees no token must give the empty
// state exactly (out 0, lse −inf). An unwritten (NaN) output fails on either.
inline void expect_close(Backend backend, const std::vector<double>& expected, const std::vector<double>& expected_lse, const Outputs& got,
                         int q_heads, int head_dim, DType out_dtype, const std::function<std::string(std::size_t)>& describe_token) {
  const auto dims = static_cast<std::size_t>(head_dim);
  const std::size_t per_token = static_cast<std::size_t>(q_heads) * dims;
  ASSERT_EQ(got.out.size(), expected.size());
  ASSERT_EQ(got.lse.size(), expected_lse.size());
  const double element_tolerance = out_dtype == DType::f32 ? 2e-5 : (out_dtype == DType::bf16 ? 8e-3 : 1e-3);
  const double lse_tolerance = backend == Backend::cpu ? 2e-5 : 1e-3;
  for (std::size_t token = 0; token < expected.size() / per_token; ++token) {
    double error = 0.0;
    double norm = 0.0;
    for (int h = 0; h < q_heads; ++h) {
      const std::size_t at = token * static_cast<std::size_t>(q_heads) + static_cast<std::size_t>(h);
      const bool empty = expected_lse[at] == -std::numeric_limits<double>::infinity();
      for (std::size_t i = at * dims; i < (at + 1) * dims; ++i) {
        const double value = got.out[i];
        ASSERT_TRUE(std::isfinite(value)) << describe_token(token) << ": element " << i - token * per_token << " not written";
        if (empty) {
          ASSERT_EQ(value, 0.0) << describe_token(token) << " head " << h << " sees no token: out must be 0";
        } else if (backend == Backend::cpu) {
          ASSERT_NEAR(value, expected[i], element_tolerance * std::max(1.0, std::abs(expected[i])))
              << describe_token(token) << ": element " << i - token * per_token;
        }
        error += (value - expected[i]) * (value - expected[i]);
        norm += expected[i] * expected[i];
      }
      if (empty) {
        ASSERT_EQ(got.lse[at], -std::numeric_limits<float>::infinity()) << describe_token(token) << " head " << h << " sees no token";
      } else {
        ASSERT_NEAR(got.lse[at], expected_lse[at], lse_tolerance * std::max(1.0, std::abs(expected_lse[at]))) << describe_token(token) << " head " << h;
      }
    }
    if (backend == Backend::cuda && norm > 0.0) ASSERT_LE(std::sqrt(error / norm), 1e-2) << describe_token(token);
  }
}

// Every query token's output (queries_per_seq per sequence, each seeing its sequence up to
// itself) against the fp64 reference over KV recomputed from the tokens (never read back from the
// cache), with the backend's tolerances.
inline void expect_matches_reference(Backend backend, const Workload& w, const Shape& shape, const std::vector<float>& q, const Outputs& got,
                                     DType out_dtype = DType::f32, int queries_per_seq = 1) {
  std::vector<double> expected;
  std::vector<double> expected_lse;
  multi_query_reference(w, q, shape.q_heads, queries_per_seq, 1.0 / std::sqrt(static_cast<double>(shape.head_dim)), expected, expected_lse);
  expect_close(backend, expected, expected_lse, got, shape.q_heads, shape.head_dim, out_dtype, [&](std::size_t token) {
    const std::size_t s = token / static_cast<std::size_t>(queries_per_seq);
    return "sequence " + std::to_string(s) + " of " + std::to_string(w.seqs.size()) + " (" + std::to_string(w.tokens[s].size()) +
           " tokens) query token " + std::to_string(token % static_cast<std::size_t>(queries_per_seq));
  });
}

// The same bits in two outputs of one shape and dtype (out as stored, and lse).
inline void expect_same_bits(const Outputs& a, const Outputs& b) {
  ASSERT_EQ(a.out.size(), b.out.size());
  ASSERT_EQ(a.out_bits, b.out_bits);
  ASSERT_EQ(std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(float)), 0);
  ASSERT_EQ(a.lse.size(), b.lse.size());
  ASSERT_EQ(std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float)), 0);
}

// A plan of the workload with `options` (options.queries_per_seq query tokens per sequence) and
// random q, run into poisoned outputs and checked.
inline void check_workload(Backend backend, const Workload& w, const Shape& shape, harness::Random& random, const PlanOptions& options = {},
                           DType out_dtype = DType::f32, DType cpu_q_dtype = DType::f32) {
  SCOPED_TRACE(::testing::Message() << shape << " queries_per_seq " << options.queries_per_seq << " min_shared_rows " << options.min_shared_rows
                                    << " max_item_tokens " << options.max_item_tokens << " out " << to_string(out_dtype));
  const std::vector<float> q = random_queries(w, shape, random, options.queries_per_seq);
  const Plan plan = make_plan(w.cache, w.seqs, options);
  ASSERT_EQ(plan.queries_per_seq, options.queries_per_seq);
  expect_matches_reference(backend, w, shape, q, run_attention(backend, w, plan, shape, q, out_dtype, Fill::nan, cpu_q_dtype), out_dtype,
                           options.queries_per_seq);
}

}  // namespace chunktree::testing
