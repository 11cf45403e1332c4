#include "chunktree/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace chunktree::reference {

void attention(const float* q, int num_q_heads, const float* k, const float* v, std::int64_t tokens, int num_kv_heads,
               int head_dim, double scale, double* out, double* lse) {
  const int group = num_q_heads / num_kv_heads;
  if (tokens <= 0) {  // no token: the empty state
    std::fill(out, out + static_cast<std::ptrdiff_t>(num_q_heads) * head_dim, 0.0);
    std::fill(lse, lse + num_q_heads, -std::numeric_limits<double>::infinity());
    return;
  }
  std::vector<double> scores(static_cast<std::size_t>(tokens));
  for (int h = 0; h < num_q_heads; ++h) {
    const int kv_head = h / group;
    const float* query = q + static_cast<std::ptrdiff_t>(h) * head_dim;
    double max = -std::numeric_limits<double>::infinity();
    for (std::int64_t t = 0; t < tokens; ++t) {
      const float* key = k + (t * num_kv_heads + kv_head) * head_dim;
      double dot = 0.0;
      for (int i = 0; i < head_dim; ++i) dot += static_cast<double>(query[i]) * static_cast<double>(key[i]);
      scores[static_cast<std::size_t>(t)] = dot * scale;
      max = std::max(max, scores[static_cast<std::size_t>(t)]);
    }
    double* o = out + static_cast<std::ptrdiff_t>(h) * head_dim;
    std::fill(o, o + head_dim, 0.0);
    double sum = 0.0;
    for (std::int64_t t = 0; t < tokens; ++t) {
      const double p = std::exp(scores[static_cast<std::size_t>(t)] - max);
      sum += p;
      const float* value = v + (t * num_kv_heads + kv_head) * head_dim;
      for (int i = 0; i < head_dim; ++i) o[i] += p * static_cast<double>(value[i]);
    }
    for (int i = 0; i < head_dim; ++i) o[i] /= sum;
    lse[h] = max + std::log(sum);
  }
}

}  // namespace chunktree::reference
