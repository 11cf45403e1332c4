// Multi-token queries on a cache workload (PlanOptions::queries_per_seq): the last `queries`
// tokens of every sequence are queries, query i of a sequence of length L seeing its positions
// 0 .. L − queries + i. The fp64 reference of that, and workload helpers that make the query
// tokens shared between sequences.
#pragma once

#include <cstdint>
#include <thread>
#include <vector>

#include "chunktree/reference.hpp"
#include "cpu/parallel_for.hpp"
#include "support/workload.hpp"

namespace chunktree::testing {

// out [seqs · queries, q_heads, head_dim] and lse [seqs · queries, q_heads] for q of that shape
// (token i of sequence s at row s · queries + i), over KV recomputed from the tokens. Sequences
// on every core (each writes its own rows): the GPU tests' time on the device machine is mostly
// this reference's (a 64-sequence batch on a 4096-token prompt: ~23 s here on 2 busy cores,
// most of it the KV recomputed from token hashes, every sequence its shared prompt again).
inline void multi_query_reference(const Workload& w, const std::vector<float>& q, int q_heads, int queries, double scale,
                                  std::vector<double>& out, std::vector<double>& lse) {
  const CacheConfig& c = w.cache.config();
  const std::size_t per_token = static_cast<std::size_t>(q_heads) * static_cast<std::size_t>(c.head_dim);
  out.assign(w.seqs.size() * static_cast<std::size_t>(queries) * per_token, 0.0);
  lse.assign(w.seqs.size() * static_cast<std::size_t>(queries) * static_cast<std::size_t>(q_heads), 0.0);
  cpu::parallel_for(w.seqs.size(), static_cast<int>(std::thread::hardware_concurrency()), [&](std::size_t s) {
    const std::vector<float> k = w.expected_kv(s, 0);
    const std::vector<float> v = w.expected_kv(s, 1);
    const auto length = static_cast<std::int64_t>(w.tokens[s].size());
    for (int i = 0; i < queries; ++i) {
      const std::size_t token = s * static_cast<std::size_t>(queries) + static_cast<std::size_t>(i);
      reference::attention(&q[token * per_token], q_heads, k.data(), v.data(), length - queries + i + 1, c.num_kv_heads, c.head_dim, scale,
                           &out[token * per_token], &lse[token * static_cast<std::size_t>(q_heads)]);
    }
  });
}

// Makes every sequence at least `queries` tokens long, then appends 1 .. queries draft tokens to
// about half of them, forks a few (the forks share every token, query tokens included), adds a
// copy of one sequence and a prefix of another (its query tokens inside the other's KV).
inline void add_query_tokens(Workload& w, harness::Random& random, int queries, int vocabulary = 6) {
  auto random_tokens = [&](std::int64_t n) {
    std::vector<Token> tokens(static_cast<std::size_t>(n));
    for (Token& token : tokens) token = static_cast<Token>(random.integer(0, vocabulary - 1));
    return tokens;
  };
  for (std::size_t s = 0; s < w.seqs.size(); ++s) {
    const auto length = static_cast<std::int64_t>(w.tokens[s].size());
    if (length < queries) w.append(s, random_tokens(queries - length));
    if (random.chance(0.5)) w.append(s, random_tokens(random.integer(1, queries)));
  }
  const auto count = static_cast<std::int64_t>(w.seqs.size());
  w.fork(static_cast<std::size_t>(random.integer(0, count - 1)), static_cast<int>(random.integer(1, 2)));
  const std::vector<Token> copy = w.tokens[static_cast<std::size_t>(random.integer(0, count - 1))];
  w.add(copy);
  const std::vector<Token> longest = w.tokens[static_cast<std::size_t>(random.integer(0, count - 1))];
  if (static_cast<std::int64_t>(longest.size()) > queries) {
    const std::int64_t cut = random.integer(queries, static_cast<std::int64_t>(longest.size()) - 1);
    w.add(std::vector<Token>(longest.begin(), longest.begin() + cut));
  }
}

}  // namespace chunktree::testing
