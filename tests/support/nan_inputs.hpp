// NaN in, NaN out: a NaN in q or in a key must reach every output it touches as NaN (out and
// lse), never as the empty state that a merge would silently drop. Helpers shared by the backend
// tests: a workload with a shared prefix and private suffixes, a NaN written into one key of the
// prefix, and the check of which outputs are NaN.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "support/workload.hpp"

namespace chunktree::testing {

// Four sequences on a 40-token prefix (crossing chunk boundaries for chunks ≤ 32) with private
// suffixes of 1 to 30 tokens, so that every output merges a shared state and a private one.
inline Workload nan_probe_workload(const CacheConfig& config) {
  Workload w(config);
  const std::vector<Token> prefix(40, 3);
  for (int suffix : {1, 7, 16, 30}) {
    std::vector<Token> tokens = prefix;
    for (int i = 0; i < suffix; ++i) tokens.push_back(100 + suffix + i);
    w.add(tokens);
  }
  return w;
}

// Rewrites the K of prefix token `position` (shared by every sequence) with element 0 of kv head
// 0 set to NaN; V and the other heads keep their values.
inline void poison_shared_key(Workload& w, std::size_t position) {
  const CacheConfig& c = w.cache.config();
  const Slot slot = w.cache.slots(w.seqs[0])[position];
  const std::size_t per_token = static_cast<std::size_t>(c.num_kv_heads * c.head_dim);
  const std::vector<float> k_all = w.expected_kv(0, 0);
  const std::vector<float> v_all = w.expected_kv(0, 1);
  std::vector<float> k(k_all.begin() + static_cast<std::ptrdiff_t>(position * per_token),
                       k_all.begin() + static_cast<std::ptrdiff_t>((position + 1) * per_token));
  const std::vector<float> v(v_all.begin() + static_cast<std::ptrdiff_t>(position * per_token),
                             v_all.begin() + static_cast<std::ptrdiff_t>((position + 1) * per_token));
  k[0] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::int64_t> shape{1, c.num_kv_heads, c.head_dim};
  w.cache.write_kv(0, std::vector<Slot>{slot}, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                   ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
}

// out [seqs, q_heads, head_dim] and lse [seqs, q_heads]: every element of (sequence, head) is NaN
// when nan_expected(sequence, head), and finite otherwise.
inline void expect_nan_exactly_where(const std::vector<float>& out, const std::vector<float>& lse, int seqs, int q_heads, int head_dim,
                                     const std::function<bool(int, int)>& nan_expected) {
  for (int s = 0; s < seqs; ++s) {
    for (int h = 0; h < q_heads; ++h) {
      const bool nan = nan_expected(s, h);
      const std::size_t head = static_cast<std::size_t>(s * q_heads + h);
      EXPECT_EQ(std::isnan(lse[head]), nan) << "lse of sequence " << s << " head " << h << " is " << lse[head];
      if (!nan) EXPECT_TRUE(std::isfinite(lse[head])) << "sequence " << s << " head " << h;
      for (int d = 0; d < head_dim; ++d) {
        const float value = out[head * static_cast<std::size_t>(head_dim) + static_cast<std::size_t>(d)];
        ASSERT_EQ(std::isnan(value), nan) << "out of sequence " << s << " head " << h << " dim " << d << " is " << value;
        if (!nan) ASSERT_TRUE(std::isfinite(value)) << "sequence " << s << " head " << h << " dim " << d;
      }
    }
  }
}

}  // namespace chunktree::testing
