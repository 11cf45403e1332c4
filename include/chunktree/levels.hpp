// Attention over KV the caller owns, in explicit shared levels (Hydragen-style), for engines that
// manage their own (paged or contiguous) KV and know where the sharing is.
//
// A batch of sequences, each with queries_per_seq query tokens. Shared levels are sets of KV
// segments; a segment is read whole, by every query token, of a contiguous range of sequences
// (non-uniform fan-out, any depth: levels are just groups, and a sequence may read any number
// of segments). Each sequence also has its own KV, read causally: its last queries_per_seq
// tokens are the query tokens' own K/V, and query token i sees own tokens
// 0 .. own.length − queries_per_seq + i. The result is exact attention over all of it; the
// backends are cpu::attend_levels and cuda::LevelsPlan + cuda::attend_levels.
//
// Tensors: q and out [num_seqs · queries_per_seq, num_q_heads, head_dim] (token t of sequence s
// at row s · queries_per_seq + t), lse [num_seqs · queries_per_seq, num_q_heads] in fp32
// (natural log). All KV of one call shares one dtype, kv heads and head dim, and q's device; on the
// GPU q has the KV's dtype too (the CPU takes q in any dtype).
#pragma once

#include <cstdint>
#include <vector>

#include "chunktree/types.hpp"

namespace chunktree {

// `length` tokens of KV. Contiguous (`pages` empty): k and v are [n ≥ length, kv_heads, head_dim]
// and the segment is their first `length` tokens. Paged: k and v are page pools
// [num_pages, page_size, kv_heads, head_dim] and token t is in page pages[t / page_size] at slot
// t % page_size; pages holds exactly ceil(length / page_size) pages.
struct KvSegment {
  ConstTensorView k;
  ConstTensorView v;
  std::int64_t length = 0;
  std::vector<std::int32_t> pages;
};

// A shared segment and the sequences [seq_begin, seq_end) that read it.
struct SharedSegment {
  KvSegment kv;
  std::int64_t seq_begin = 0;
  std::int64_t seq_end = 0;
};

struct Levels {
  std::vector<std::vector<SharedSegment>> levels;  // outermost (e.g. the system prompt) first
  // One entry per sequence, or empty when no sequence has KV of its own. A sequence's own KV
  // must hold at least queries_per_seq tokens, except that with one query token it may be empty
  // (every token shared). Every sequence must see at least one token.
  std::vector<KvSegment> own;
  int queries_per_seq = 1;
};

}  // namespace chunktree
