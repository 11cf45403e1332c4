// A tree workload run through the levels API (chunktree/levels.hpp), as an engine that owns its
// KV would call it (docs/FORMATS.md, "What check does with a tree file"): the sequences in
// depth-first order; node X a shared segment at level depth(X) for every maximal run of
// sequences through X whose query tokens all come after X; each sequence's own KV a contiguous
// copy of its tokens after the last such node. Nodes alternate between contiguous buffers and
// page pools (page size = chunk size, pages in reverse order, one spare page).
#pragma once

#include <cstddef>
#include <vector>

#include "chunktree/levels.hpp"
#include "harness/backend.hpp"
#include "harness/tree_format.hpp"

namespace chunktree::harness {

class TreeLevels {
 public:
  explicit TreeLevels(const TreeWorkload& w);

  std::size_t segments() const;         // shared segments and own parts
  std::size_t shared_segments() const;

  // q as query_batch writes it (file order, the workload's dtype); out and lse in file order, f32.
  void attend(Backend backend, const std::vector<std::byte>& q, std::vector<float>& out, std::vector<float>& lse,
              const AttentionParams& params) const;

 private:
  const TreeWorkload& w_;
  std::vector<std::size_t> order_;               // levels sequence s is file sequence order_[s]
  std::vector<std::vector<std::byte>> storage_;  // every K and V buffer the views below point into
  Levels levels_;
};

}  // namespace chunktree::harness
