// Random prefix-tree workloads built through the cache's public API, for tests.
//
// The KV of a token is a deterministic function of the token prefix that ends at it (as in
// a real model), so tests can recompute every sequence's KV without reading the cache, and
// two sequences may share a slot only if their prefixes agree.
#pragma once

#include <cstdint>
#include <vector>

#include "chunktree/numeric.hpp"
#include "chunktree/prefix_cache.hpp"
#include "harness/random.hpp"

namespace chunktree::testing {

inline std::uint64_t extend_hash(std::uint64_t hash, Token token) {
  return harness::seed_from(std::string_view(reinterpret_cast<const char*>(&token), sizeof token), hash);
}

// K (which = 0) or V (which = 1) of the token whose prefix hashes to `prefix`, for one layer
// and kv head: head_dim values drawn from N(0,1) and rounded to `dtype`.
inline std::vector<float> kv_values(std::uint64_t prefix, int which, int layer, int head, int head_dim, DType dtype) {
  harness::Random random(prefix ^ (static_cast<std::uint64_t>(which) << 60) ^ (static_cast<std::uint64_t>(layer) << 48) ^
                       (static_cast<std::uint64_t>(head) << 32));
  std::vector<float> values(static_cast<std::size_t>(head_dim));
  for (float& value : values) value = round_to(dtype, static_cast<float>(random.normal()));
  return values;
}

class Workload {
 public:
  explicit Workload(const CacheConfig& config) : cache(config) {}

  PrefixCache cache;
  std::vector<SeqId> seqs;                   // live sequences
  std::vector<std::vector<Token>> tokens;    // tokens of seqs[i]

  SeqId add(const std::vector<Token>& sequence_tokens) {
    const AddResult result = cache.add(sequence_tokens);
    write(sequence_tokens, static_cast<std::size_t>(result.cached_tokens), result.slots);
    seqs.push_back(result.seq);
    tokens.push_back(sequence_tokens);
    return result.seq;
  }
  void append(std::size_t index, const std::vector<Token>& more) {
    const std::vector<Slot> slots = cache.append(seqs[index], more);
    const std::size_t first = tokens[index].size();
    tokens[index].insert(tokens[index].end(), more.begin(), more.end());
    write(tokens[index], first, slots);
  }
  void fork(std::size_t index, int n) {
    for (SeqId child : cache.fork(seqs[index], n)) {
      seqs.push_back(child);
      tokens.push_back(tokens[index]);
    }
  }
  void remove(std::size_t index) {
    cache.remove(seqs[index]);
    seqs.erase(seqs.begin() + static_cast<std::ptrdiff_t>(index));
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(index));
  }

  // K or V of sequence `index` as [tokens, kv_heads, head_dim], computed from its tokens.
  std::vector<float> expected_kv(std::size_t index, int which, int layer = 0) const {
    const CacheConfig& c = cache.config();
    std::vector<float> result;
    std::uint64_t hash = 0;
    for (Token token : tokens[index]) {
      hash = extend_hash(hash, token);
      for (int h = 0; h < c.num_kv_heads; ++h) {
        const std::vector<float> values = kv_values(hash, which, layer, h, c.head_dim, c.dtype);
        result.insert(result.end(), values.begin(), values.end());
      }
    }
    return result;
  }

  // Random operations: adds that reuse random prefixes of live sequences, appends, forks and removes.
  void grow(harness::Random& random, int operations, int max_new_tokens, int vocabulary = 6) {
    for (int op = 0; op < operations; ++op) {
      const double pick = random.uniform();
      if (seqs.empty() || pick < 0.45) {
        std::vector<Token> sequence;
        if (!seqs.empty() && random.chance(0.8)) {
          const auto& source = tokens[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(seqs.size()) - 1))];
          sequence.assign(source.begin(), source.begin() + random.integer(0, static_cast<std::int64_t>(source.size())));
        }
        const std::int64_t fresh = random.integer(sequence.empty() ? 1 : 0, max_new_tokens);
        for (std::int64_t i = 0; i < fresh; ++i) sequence.push_back(static_cast<Token>(random.integer(0, vocabulary - 1)));
        add(sequence);
      } else if (pick < 0.75) {
        std::vector<Token> more(static_cast<std::size_t>(random.integer(1, std::max(1, max_new_tokens / 4))));
        for (Token& token : more) token = static_cast<Token>(random.integer(0, vocabulary - 1));
        append(static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(seqs.size()) - 1)), more);
      } else if (pick < 0.88) {
        fork(static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(seqs.size()) - 1)),
             static_cast<int>(random.integer(1, 3)));
      } else if (seqs.size() > 1) {
        remove(static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(seqs.size()) - 1)));
      }
    }
  }

 private:
  // Writes the KV of tokens[first..] of `sequence_tokens` into `slots`, for every layer.
  void write(const std::vector<Token>& sequence_tokens, std::size_t first, const std::vector<Slot>& slots) {
    const CacheConfig& c = cache.config();
    std::uint64_t hash = 0;
    std::vector<std::uint64_t> hashes;
    for (std::size_t t = 0; t < sequence_tokens.size(); ++t) {
      hash = extend_hash(hash, sequence_tokens[t]);
      if (t >= first) hashes.push_back(hash);
    }
    for (int layer = 0; layer < c.num_layers; ++layer) {
      std::vector<float> k;
      std::vector<float> v;
      for (std::uint64_t prefix : hashes) {
        for (int h = 0; h < c.num_kv_heads; ++h) {
          const auto kh = kv_values(prefix, 0, layer, h, c.head_dim, c.dtype);
          const auto vh = kv_values(prefix, 1, layer, h, c.head_dim, c.dtype);
          k.insert(k.end(), kh.begin(), kh.end());
          v.insert(v.end(), vh.begin(), vh.end());
        }
      }
      const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), c.num_kv_heads, c.head_dim};
      cache.write_kv(layer, slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                     ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
    }
  }
};

}  // namespace chunktree::testing
