// Random levels (chunktree/levels.hpp) on the host, for tests: KV segments stored the way a
// caller stores them (contiguous, with unused tokens after the segment, or in page pools with
// pages in any order and unused pages), the tokens each segment holds, and the fp64 reference
// of a levels call over the KV each query token sees.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "chunktree/levels.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/reference.hpp"
#include "harness/random.hpp"

namespace chunktree::testing {

// `numel` elements of `dtype` in host memory (4-byte aligned, so that f32 works too).
struct Blob {
  DType dtype = DType::f32;
  std::int64_t numel = 0;
  std::vector<std::uint32_t> words;

  Blob() = default;
  Blob(DType dtype_, std::int64_t numel_)
      : dtype(dtype_), numel(numel_), words((static_cast<std::size_t>(numel_) * dtype_size(dtype_) + 3) / 4, 0xffffffffu) {}
  void* data() { return words.data(); }
  const void* data() const { return words.data(); }
  std::size_t bytes() const { return static_cast<std::size_t>(numel) * dtype_size(dtype); }
  void set(std::int64_t i, float value) { store_element(words.data(), dtype, i, value); }
  float get(std::int64_t i) const { return load_element(words.data(), dtype, i); }
};

// Random N(0,1) values, stored in the blob's dtype (so already rounded to it).
inline Blob random_blob(harness::Random& random, DType dtype, std::int64_t numel) {
  Blob blob(dtype, numel);
  for (std::int64_t i = 0; i < numel; ++i) blob.set(i, static_cast<float>(random.normal()));
  return blob;
}

// One segment's KV as its owner stores it, and the tokens it holds ([length, kv_heads, head_dim]).
struct HostSegment {
  std::int64_t length = 0;
  std::vector<std::int32_t> pages;   // empty: contiguous
  std::vector<std::int64_t> shape;   // of k and v: [n, kv, d] or [num_pages, page_size, kv, d]
  Blob k;
  Blob v;
  std::vector<float> k_tokens;
  std::vector<float> v_tokens;

  // A view of this segment whose K and V live at k_data / v_data (the host blobs by default).
  KvSegment view(Device device = Device::cpu, const void* k_data = nullptr, const void* v_data = nullptr) const {
    KvSegment segment;
    segment.length = length;
    segment.pages = pages;
    if (length == 0) return segment;
    segment.k = ConstTensorView(k_data != nullptr ? k_data : k.data(), k.dtype, device, shape);
    segment.v = ConstTensorView(v_data != nullptr ? v_data : v.data(), v.dtype, device, shape);
    return segment;
  }
};

// New random values for every element of a segment's storage (its layout stays), and the
// tokens it then holds.
inline void refill(HostSegment& segment, harness::Random& random, DType dtype) {
  if (segment.length == 0) return;
  const std::int64_t token_elements = segment.shape[segment.shape.size() - 2] * segment.shape.back();
  std::int64_t numel = token_elements;
  for (std::size_t i = 0; i + 2 < segment.shape.size(); ++i) numel *= segment.shape[i];
  segment.k = random_blob(random, dtype, numel);
  segment.v = random_blob(random, dtype, numel);
  segment.k_tokens.clear();
  segment.v_tokens.clear();
  for (std::int64_t t = 0; t < segment.length; ++t) {
    const std::int64_t page_size = segment.pages.empty() ? 0 : segment.shape[1];
    const std::int64_t slot = page_size == 0 ? t : segment.pages[static_cast<std::size_t>(t / page_size)] * page_size + t % page_size;
    for (std::int64_t e = 0; e < token_elements; ++e) {
      segment.k_tokens.push_back(segment.k.get(slot * token_elements + e));
      segment.v_tokens.push_back(segment.v.get(slot * token_elements + e));
    }
  }
}

// A segment of `length` tokens: contiguous with `extra` unused tokens after it (page_size 0), or
// in a pool of pages of `page_size` with `extra` unused pages, its pages in random order.
inline HostSegment random_segment(harness::Random& random, DType dtype, int kv_heads, int head_dim, std::int64_t length, int page_size,
                                  std::int64_t extra) {
  HostSegment segment;
  segment.length = length;
  if (length == 0) return segment;
  if (page_size == 0) {
    segment.shape = {length + extra, kv_heads, head_dim};
  } else {
    const std::int64_t needed = (length + page_size - 1) / page_size;
    const std::int64_t num_pages = needed + extra;
    segment.shape = {num_pages, page_size, kv_heads, head_dim};
    std::vector<std::int32_t> order(static_cast<std::size_t>(num_pages));
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i) {
      std::swap(order[i - 1], order[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i) - 1))]);
    }
    segment.pages.assign(order.begin(), order.begin() + needed);
  }
  refill(segment, random, dtype);
  return segment;
}

struct HostShared {
  HostSegment kv;
  std::int64_t seq_begin = 0;
  std::int64_t seq_end = 0;
};

// A whole levels call on the host.
struct HostLevels {
  std::int64_t num_seqs = 0;
  int queries = 1;
  int kv_heads = 1;
  int head_dim = 64;
  DType dtype = DType::bf16;
  std::vector<std::vector<HostShared>> levels;
  std::vector<HostSegment> own;  // empty: no sequence has KV of its own

  std::int64_t tokens() const { return num_seqs * queries; }

  // Every segment, in the order levels (outermost first), then own.
  template <typename F>
  void for_each_segment(F&& f) {
    visit_segments(*this, f);
  }
  template <typename F>
  void for_each_segment(F&& f) const {
    visit_segments(*this, f);
  }

  // The levels with views of the host blobs.
  Levels view() const {
    Levels result;
    result.queries_per_seq = queries;
    for (const auto& level : levels) {
      result.levels.emplace_back();
      for (const HostShared& shared : level) result.levels.back().push_back(SharedSegment{shared.kv.view(), shared.seq_begin, shared.seq_end});
    }
    for (const HostSegment& segment : own) result.own.push_back(segment.view());
    return result;
  }

  // K and V ([tokens, kv_heads, head_dim]) that query token i of sequence s sees.
  void visible(std::int64_t s, int i, std::vector<float>& k, std::vector<float>& v) const {
    k.clear();
    v.clear();
    for (const auto& level : levels) {
      for (const HostShared& shared : level) {
        if (s < shared.seq_begin || s >= shared.seq_end) continue;
        k.insert(k.end(), shared.kv.k_tokens.begin(), shared.kv.k_tokens.end());
        v.insert(v.end(), shared.kv.v_tokens.begin(), shared.kv.v_tokens.end());
      }
    }
    if (own.empty()) return;
    const HostSegment& mine = own[static_cast<std::size_t>(s)];
    const std::int64_t seen = mine.length == 0 ? 0 : mine.length - queries + i + 1;
    const auto elements = static_cast<std::ptrdiff_t>(seen * kv_heads * head_dim);
    k.insert(k.end(), mine.k_tokens.begin(), mine.k_tokens.begin() + elements);
    v.insert(v.end(), mine.v_tokens.begin(), mine.v_tokens.begin() + elements);
  }

  // The fp64 reference of every query token: out [tokens, q_heads, head_dim], lse [tokens, q_heads].
  void reference(const std::vector<float>& q, int q_heads, double scale, std::vector<double>& out, std::vector<double>& lse) const {
    const std::size_t per_token = static_cast<std::size_t>(q_heads) * static_cast<std::size_t>(head_dim);
    out.assign(static_cast<std::size_t>(tokens()) * per_token, 0.0);
    lse.assign(static_cast<std::size_t>(tokens()) * static_cast<std::size_t>(q_heads), 0.0);
    std::vector<float> k;
    std::vector<float> v;
    for (std::int64_t s = 0; s < num_seqs; ++s) {
      for (int i = 0; i < queries; ++i) {
        visible(s, i, k, v);
        const auto token = static_cast<std::size_t>(s * queries + i);
        const auto kv_tokens = static_cast<std::int64_t>(k.size() / (static_cast<std::size_t>(kv_heads) * static_cast<std::size_t>(head_dim)));
        reference::attention(&q[token * per_token], q_heads, k.data(), v.data(), kv_tokens, kv_heads, head_dim, scale,
                             &out[token * per_token], &lse[token * static_cast<std::size_t>(q_heads)]);
      }
    }
  }

 private:
  template <typename Self, typename F>
  static void visit_segments(Self& host, F& f) {
    for (auto& level : host.levels) {
      for (auto& shared : level) f(shared.kv);
    }
    for (auto& segment : host.own) f(segment);
  }
};

// Levels with no segments yet, for a test to fill in.
inline HostLevels empty_levels(std::int64_t num_seqs, int queries, int kv_heads = 2, int head_dim = 64, DType dtype = DType::bf16) {
  HostLevels host;
  host.num_seqs = num_seqs;
  host.queries = queries;
  host.kv_heads = kv_heads;
  host.head_dim = head_dim;
  host.dtype = dtype;
  return host;
}

// A segment in the levels' dtype, kv heads and head dim: contiguous with `extra` unused tokens,
// or paged with `extra` unused pages.
inline HostSegment contiguous(harness::Random& random, const HostLevels& host, std::int64_t length, std::int64_t extra = 0) {
  return random_segment(random, host.dtype, host.kv_heads, host.head_dim, length, 0, extra);
}
inline HostSegment paged(harness::Random& random, const HostLevels& host, std::int64_t length, int page_size, std::int64_t extra = 0) {
  return random_segment(random, host.dtype, host.kv_heads, host.head_dim, length, page_size, extra);
}

// The levels' layout in one line, for failure messages: each segment's length (pNN: paged in
// pages of NN) and the sequences that read it, then the own parts' lengths (p: paged).
inline std::string describe(const HostLevels& host) {
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

struct LevelsOptions {
  std::int64_t num_seqs = 4;
  int queries = 1;
  int kv_heads = 1;
  int head_dim = 64;
  DType dtype = DType::bf16;
  int num_levels = 2;
  std::int64_t max_segment = 40;  // tokens of a shared segment: 1 .. max_segment
  std::int64_t max_own = 20;      // own tokens: queries .. queries + max_own
  bool own = true;                // false: no own KV (queries must be 1)
  double paged_chance = 0.5;
  std::vector<int> page_sizes = {16, 7};
};

// Random levels: each level either cuts the sequences into contiguous groups (most of which get
// a segment) or has a few segments over random ranges, and may have one more segment over a
// random range, so that fan-out is uneven and a sequence may read several segments of a level.
// With queries_per_seq 1 some sequences have no own KV (where a segment covers them).
inline HostLevels random_levels(harness::Random& random, const LevelsOptions& options) {
  HostLevels host;
  host.num_seqs = options.num_seqs;
  host.queries = options.queries;
  host.kv_heads = options.kv_heads;
  host.head_dim = options.head_dim;
  host.dtype = options.dtype;
  const std::int64_t n = options.num_seqs;
  auto segment = [&](std::int64_t length) {
    int page_size = 0;
    if (random.chance(options.paged_chance)) {
      page_size = options.page_sizes[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(options.page_sizes.size()) - 1))];
    }
    return random_segment(random, options.dtype, options.kv_heads, options.head_dim, length, page_size, random.integer(0, 2));
  };
  auto shared_length = [&] { return random.chance(0.15) ? 1 : random.integer(1, options.max_segment); };
  auto random_range = [&](std::int64_t& begin, std::int64_t& end) {
    begin = random.integer(0, n - 1);
    end = random.integer(begin + 1, n);
  };
  for (int l = 0; l < options.num_levels; ++l) {
    std::vector<HostShared> level;
    if (l == 0 && !options.own) {
      level.push_back(HostShared{segment(shared_length()), 0, n});  // every sequence sees some KV
    } else if (random.chance(0.6)) {
      for (std::int64_t begin = 0; begin < n;) {
        const std::int64_t end = std::min(n, begin + random.integer(1, std::max<std::int64_t>(1, n / 2)));
        if (random.chance(0.8)) level.push_back(HostShared{segment(shared_length()), begin, end});
        begin = end;
      }
    } else {
      for (std::int64_t count = random.integer(1, 3); count > 0; --count) {
        HostShared shared;
        random_range(shared.seq_begin, shared.seq_end);
        shared.kv = segment(shared_length());
        level.push_back(std::move(shared));
      }
    }
    if (random.chance(0.5)) {
      HostShared shared;
      random_range(shared.seq_begin, shared.seq_end);
      shared.kv = segment(shared_length());
      level.push_back(std::move(shared));
    }
    if (!level.empty()) host.levels.push_back(std::move(level));
  }
  if (!options.own) return host;
  for (std::int64_t s = 0; s < n; ++s) {
    bool covered = false;
    for (const auto& level : host.levels) {
      for (const HostShared& shared : level) covered = covered || (s >= shared.seq_begin && s < shared.seq_end);
    }
    std::int64_t length = options.queries + random.integer(0, options.max_own);
    if (options.queries == 1 && covered && random.chance(0.25)) length = 0;
    host.own.push_back(segment(length));
  }
  return host;
}

// Random q [tokens, q_heads, head_dim], representable in `dtype`, as fp32.
inline std::vector<float> random_queries(harness::Random& random, std::int64_t tokens, int q_heads, int head_dim, DType dtype) {
  std::vector<float> q(static_cast<std::size_t>(tokens) * static_cast<std::size_t>(q_heads) * static_cast<std::size_t>(head_dim));
  for (float& value : q) value = round_to(dtype, static_cast<float>(random.normal()));
  return q;
}

// `values` stored in `dtype`.
inline Blob to_blob(const std::vector<float>& values, DType dtype) {
  Blob blob(dtype, static_cast<std::int64_t>(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) blob.set(static_cast<std::int64_t>(i), values[i]);
  return blob;
}

}  // namespace chunktree::testing
