// The fp64 reference: plain attention of one query over one sequence's whole KV, no tree.
#pragma once

#include <cstdint>

namespace chunktree::reference {

// q: [num_q_heads, head_dim]; k, v: [tokens, num_kv_heads, head_dim]; q heads map to kv
// heads in groups of num_q_heads / num_kv_heads. Writes out [num_q_heads, head_dim] and
// lse [num_q_heads] (natural log of Σ exp(scale · q·k)); with no token, the empty state (out 0,
// lse −inf).
void attention(const float* q, int num_q_heads, const float* k, const float* v, std::int64_t tokens,
               int num_kv_heads, int head_dim, double scale, double* out, double* lse);

}  // namespace chunktree::reference
