// Merge primitives for attention states (o, lse), for composing chunktree's results with other
// kernels (e.g. a prefix computed elsewhere). A state over a set of KV tokens is o, the softmax-
// weighted mean of V over them, and lse = ln Σ exp(score); the merge of two states over disjoint
// sets is the state over their union. An empty set is (o = 0, lse = −inf): merging it changes
// nothing, and merging only empty states gives an empty state, never NaN. A NaN in a state (its lse, or
// its o however little it weighs) stays NaN in the result, whatever the parts' order. The result does not
// depend on anything but the inputs (fixed order, no atomics): repeated calls give the same bits.
//
// o: [tokens, heads, head_dim] in f32, f16 or bf16; lse: [tokens, heads] in f32. All tensors of a
// call on one device (CPU, or CUDA: enqueued on `stream`, a cudaStream_t; null: the default stream).
#pragma once

#include "chunktree/types.hpp"

namespace chunktree {

// out = merge(a, b). b_o has a_o's dtype; out_o may be any state dtype, and may be a_o or b_o
// (exactly: the same memory in their dtype; each element is read before it is written), as out_lse
// may be a_lse or b_lse; an output that overlaps an input only in part is refused.
void merge_state(const ConstTensorView& a_o, const ConstTensorView& a_lse, const ConstTensorView& b_o,
                 const ConstTensorView& b_lse, const TensorView& out_o, const TensorView& out_lse, void* stream = nullptr);

// o, lse = merge((o, lse), (other_o, other_lse)), in place.
void merge_state_in_place(const TensorView& o, const TensorView& lse, const ConstTensorView& other_o,
                          const ConstTensorView& other_lse, void* stream = nullptr);

// N states per token: o [tokens, n, heads, head_dim], lse [tokens, n, heads], merged in order
// 0..n−1 into out_o [tokens, heads, head_dim] and out_lse [tokens, heads].
void merge_states(const ConstTensorView& o, const ConstTensorView& lse, const TensorView& out_o, const TensorView& out_lse,
                  void* stream = nullptr);

}  // namespace chunktree
