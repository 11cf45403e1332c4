// Random attention states for the merge primitives' tests: per token, one random KV set split
// into disjoint parts, the reference state of each part (empty parts: o = 0, lse = −inf), and the
// reference state over the union that merging them must give; the check of a merge against it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "chunktree/reference.hpp"
#include "harness/random.hpp"
#include "support/levels.hpp"

namespace chunktree::testing {

struct RandomStates {
  std::int64_t tokens = 0;
  int parts = 0;
  int heads = 0;
  int head_dim = 0;
  Blob o;                             // [tokens, parts, heads, head_dim] in the states' dtype
  std::vector<float> lse;             // [tokens, parts, heads]
  std::vector<double> expected_o;     // [tokens, heads, head_dim]: the state over every part
  std::vector<double> expected_lse;   // [tokens, heads]
  std::vector<double> magnitude;      // [tokens, heads, head_dim]: max(1, |o| of every part and of the result)

  std::int64_t o_index(std::int64_t t, int p, int h, int d) const { return ((t * parts + p) * heads + h) * head_dim + d; }
  std::size_t lse_index(std::int64_t t, int p, int h) const { return static_cast<std::size_t>((t * parts + p) * heads + h); }

  // Part p alone: o [tokens, heads, head_dim] and lse [tokens, heads].
  Blob part_o(int p) const {
    Blob result(o.dtype, tokens * heads * head_dim);
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (int h = 0; h < heads; ++h) {
        for (int d = 0; d < head_dim; ++d) result.set((t * heads + h) * head_dim + d, o.get(o_index(t, p, h, d)));
      }
    }
    return result;
  }
  std::vector<float> part_lse(int p) const {
    std::vector<float> result;
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (int h = 0; h < heads; ++h) result.push_back(lse[lse_index(t, p, h)]);
    }
    return result;
  }
};

// Each part of a token is empty with probability empty_chance (but some part is not), and all of
// a token's parts are empty with probability all_empty_chance.
inline RandomStates random_states(harness::Random& random, std::int64_t tokens, int parts, int heads, int head_dim, DType dtype,
                                  double empty_chance = 0.0, double all_empty_chance = 0.0) {
  RandomStates states;
  states.tokens = tokens;
  states.parts = parts;
  states.heads = heads;
  states.head_dim = head_dim;
  states.o = Blob(dtype, tokens * parts * heads * head_dim);
  states.lse.assign(static_cast<std::size_t>(tokens * parts * heads), 0.0f);
  states.expected_o.assign(static_cast<std::size_t>(tokens * heads * head_dim), 0.0);
  states.expected_lse.assign(static_cast<std::size_t>(tokens * heads), -std::numeric_limits<double>::infinity());
  states.magnitude.assign(states.expected_o.size(), 1.0);
  const double scale = 1.5 / std::sqrt(static_cast<double>(head_dim));  // spreads the lse values
  const auto hd = static_cast<std::size_t>(heads) * static_cast<std::size_t>(head_dim);
  std::vector<float> q(hd);
  std::vector<double> o(hd);
  std::vector<double> lse(static_cast<std::size_t>(heads));
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::vector<int> used;
    if (!random.chance(all_empty_chance)) {
      for (int p = 0; p < parts; ++p) {
        if (!random.chance(empty_chance)) used.push_back(p);
      }
      if (used.empty()) used.push_back(static_cast<int>(random.integer(0, parts - 1)));
    }
    const std::int64_t kv_tokens = used.empty() ? 0 : random.integer(static_cast<std::int64_t>(used.size()), 48);
    std::vector<float> k(static_cast<std::size_t>(kv_tokens) * hd);
    std::vector<float> v(k.size());
    for (float& x : q) x = static_cast<float>(random.normal());
    for (float& x : k) x = static_cast<float>(random.normal());
    for (float& x : v) x = static_cast<float>(random.normal());
    std::vector<int> part_of(static_cast<std::size_t>(kv_tokens));
    for (std::size_t i = 0; i < part_of.size(); ++i) {
      part_of[i] = i < used.size() ? used[i] : used[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(used.size()) - 1))];
    }
    for (int p = 0; p < parts; ++p) {
      std::vector<float> part_k;
      std::vector<float> part_v;
      for (std::size_t i = 0; i < part_of.size(); ++i) {
        if (part_of[i] != p) continue;
        part_k.insert(part_k.end(), k.begin() + static_cast<std::ptrdiff_t>(i * hd), k.begin() + static_cast<std::ptrdiff_t>((i + 1) * hd));
        part_v.insert(part_v.end(), v.begin() + static_cast<std::ptrdiff_t>(i * hd), v.begin() + static_cast<std::ptrdiff_t>((i + 1) * hd));
      }
      const auto n = static_cast<std::int64_t>(part_k.size() / hd);
      if (n == 0) {
        std::fill(o.begin(), o.end(), 0.0);
        std::fill(lse.begin(), lse.end(), -std::numeric_limits<double>::infinity());
      } else {
        reference::attention(q.data(), heads, part_k.data(), part_v.data(), n, heads, head_dim, scale, o.data(), lse.data());
      }
      for (int h = 0; h < heads; ++h) {
        states.lse[states.lse_index(t, p, h)] = static_cast<float>(lse[static_cast<std::size_t>(h)]);
        for (int d = 0; d < head_dim; ++d) {
          const std::size_t at = static_cast<std::size_t>(h) * static_cast<std::size_t>(head_dim) + static_cast<std::size_t>(d);
          states.o.set(states.o_index(t, p, h, d), static_cast<float>(o[at]));
          double& m = states.magnitude[static_cast<std::size_t>(t) * hd + at];
          m = std::max(m, std::abs(o[at]));
        }
      }
    }
    if (kv_tokens > 0) {
      reference::attention(q.data(), heads, k.data(), v.data(), kv_tokens, heads, head_dim, scale, &states.expected_o[static_cast<std::size_t>(t) * hd],
                           &states.expected_lse[static_cast<std::size_t>(t * heads)]);
    }
    for (std::size_t i = 0; i < hd; ++i) {
      double& m = states.magnitude[static_cast<std::size_t>(t) * hd + i];
      m = std::max(m, std::abs(states.expected_o[static_cast<std::size_t>(t) * hd + i]));
    }
  }
  return states;
}

// The error a state stored in `dtype` may carry, relative to its magnitude.
inline double state_tolerance(DType dtype) { return dtype == DType::f32 ? 2e-5 : (dtype == DType::bf16 ? 8e-3 : 2e-3); }

// A merged result (read back to the host) against the reference state over the union of the
// parts: lse within 2e-5, o within the rounding of the states' and the output's dtypes; a token
// whose parts are all empty gives exactly the empty state (o = 0, lse = −inf).
inline void expect_merged(const RandomStates& s, const Blob& out_o, const std::vector<float>& out_lse) {
  const double tolerance = state_tolerance(s.o.dtype) + state_tolerance(out_o.dtype);
  for (std::int64_t t = 0; t < s.tokens; ++t) {
    for (int h = 0; h < s.heads; ++h) {
      const std::size_t lse_at = static_cast<std::size_t>(t * s.heads + h);
      const double e = s.expected_lse[lse_at];
      const float got_lse = out_lse[lse_at];
      if (std::isinf(e)) {
        ASSERT_EQ(got_lse, -std::numeric_limits<float>::infinity()) << "token " << t << " head " << h << ": every part is empty";
      } else {
        ASSERT_NEAR(got_lse, e, 2e-5 * std::max(1.0, std::abs(e))) << "token " << t << " head " << h;
      }
      for (int d = 0; d < s.head_dim; ++d) {
        const std::size_t at = lse_at * static_cast<std::size_t>(s.head_dim) + static_cast<std::size_t>(d);
        const float got = out_o.get(static_cast<std::int64_t>(at));
        ASSERT_TRUE(std::isfinite(got)) << "token " << t << " head " << h << " dim " << d << " is " << got;
        if (std::isinf(e)) {
          ASSERT_EQ(got, 0.0f) << "token " << t << " head " << h << " dim " << d << ": every part is empty";
        } else {
          ASSERT_NEAR(got, s.expected_o[at], tolerance * s.magnitude[at]) << "token " << t << " head " << h << " dim " << d;
        }
      }
    }
  }
}

inline bool same_bits(const Blob& a, const Blob& b) { return a.bytes() == b.bytes() && std::memcmp(a.data(), b.data(), a.bytes()) == 0; }
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace chunktree::testing
