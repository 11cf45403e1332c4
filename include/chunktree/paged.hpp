// Attention over a serving engine's own paged KV, planned from the engine's page table (FlashInfer's
// CSR format), for engines that keep their KV blocks and page tables: chunktree reads the pages in
// place, finds the sharing itself (sequences whose page lists begin with the same pages share those
// pages' KV) and reads each shared page once per batch. The backends are cpu::PagedAttention and
// cuda::PagedAttention; docs/ENGINES.md maps FlashInfer's and vLLM's calls onto them.
//
// Sequence s holds pages kv_indices[kv_indptr[s] .. kv_indptr[s + 1]) in order; all are full but
// the last, which holds kv_last_page_len[s] tokens. Its query tokens are q rows
// qo_indptr[s] .. qo_indptr[s + 1] (one row per sequence when qo_indptr is empty); with n of them
// and causal, query token i sees the sequence's tokens 0 .. length − n + i (its own K and V are the
// last n tokens); without causal every query token sees every token. Query head h reads kv head
// h / (num_qo_heads / num_kv_heads). lse is in natural log.
#pragma once

#include <cstdint>
#include <span>

#include "chunktree/types.hpp"

namespace chunktree {

// How the engine lays out one page: positions first (NHD: [page, kv_heads, d]) or heads first
// (HND: [kv_heads, page, d]).
enum class KvLayout : std::uint8_t { nhd, hnd };

// The page table of one step, in host memory (the engine's arrays, read in place during plan()).
// A sequence of no page reads nothing: its query rows get the empty state (out 0, lse −inf), as an
// engine's padding of a CUDA graph's batch does in FlashInfer (vLLM pads so).
struct PageTableView {
  std::span<const std::int32_t> kv_indptr;         // [batch + 1], kv_indptr[0] = 0, non-decreasing
  std::span<const std::int32_t> kv_indices;        // [kv_indptr[batch]] page ids
  std::span<const std::int32_t> kv_last_page_len;  // [batch], 1 .. page_size
  std::span<const std::int32_t> qo_indptr;         // [batch + 1] or empty (one query token per sequence)
};

struct PagedShape {
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int page_size = 0;
  bool causal = false;
  float sm_scale = 0.0f;  // 0: 1/sqrt(head_dim)
};

// One layer's KV as the engine holds it: K and V page pools of the same shape and strides, read in
// place through element strides, the head dim contiguous. NHD [pages, page, kv_heads, d] has
// token_stride = kv_heads · d and head_stride = d; HND [pages, kv_heads, page, d] has token_stride
// = d and head_stride = page · d; in a [pages, 2, ...] tensor V is one stride after K. Views of
// larger tensors are read as they are.
struct PagedKv {
  const void* k = nullptr;
  const void* v = nullptr;
  DType dtype = DType::bf16;
  Device device = Device::cpu;
  std::int64_t num_pages = 0;
  std::int64_t page_size = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t page_stride = 0;   // elements from one page to the next
  std::int64_t token_stride = 0;  // elements from one token of a page to the next
  std::int64_t head_stride = 0;   // elements from one kv head to the next
};

}  // namespace chunktree
