// Partial attention states and their exact merge.
//
// A state over some set of KV tokens is (o, lse): o the softmax-weighted mean of V
// over those tokens, lse = log Σ exp(score) in natural log. An empty set is
// (o = 0, lse = -inf). Merging is exact up to fp32 rounding and order-independent
// in value; the merge order is fixed by the plan so that results are repeatable.
#pragma once

#include <cmath>

#include "chunktree/numeric.hpp"

namespace chunktree {

// Running merge of states of one (row, head). Merging an empty state changes nothing, and
// merging only empty states yields the empty state without NaN. A NaN lse (a state computed from
// NaN scores) makes the result NaN from then on: a bad input must not disappear in a merge.
// x != x holds only for NaN; written out so that host and device code share it.
CHUNKTREE_HOST_DEVICE inline bool is_nan(float x) { return x != x; }

struct StateMerger {
  float max_lse = -INFINITY;  // largest lse merged so far; NaN once a NaN state was merged
  float weight_sum = 0.0f;    // Σ exp(lse_i - max_lse) over merged states

  // Folds in a state with log-sum-exp `part_lse`. The caller updates its accumulated
  // o as o = o * previous + o_part * part, and divides by weight_sum at the end.
  struct Weights {
    float previous;
    float part;
  };
  CHUNKTREE_HOST_DEVICE Weights add(float part_lse) {
    if (part_lse == -INFINITY) return {1.0f, 0.0f};
    if (is_nan(part_lse) || is_nan(max_lse)) {
      max_lse = NAN;
      weight_sum = NAN;
      return {NAN, NAN};
    }
    if (part_lse <= max_lse) {
      const float part = expf(part_lse - max_lse);
      weight_sum += part;
      return {1.0f, part};
    }
    const float previous = (max_lse == -INFINITY) ? 0.0f : expf(max_lse - part_lse);
    weight_sum = weight_sum * previous + 1.0f;
    max_lse = part_lse;
    return {previous, 1.0f};
  }
  // Divides the accumulated o by this to normalise it; 0 for an empty result, NaN after a NaN.
  CHUNKTREE_HOST_DEVICE float inverse_weight() const { return weight_sum == 0.0f ? 0.0f : 1.0f / weight_sum; }
  CHUNKTREE_HOST_DEVICE float merged_lse() const {
    return max_lse == -INFINITY ? max_lse : max_lse + logf(weight_sum);
  }
};

}  // namespace chunktree
