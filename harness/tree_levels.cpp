#include "harness/tree_levels.hpp"

#include <algorithm>

#include "chunktree/numeric.hpp"

namespace chunktree::harness {
namespace {

// Values [tokens, kv_heads, head_dim] stored in `dtype`, token t at row slot_of(t).
template <typename SlotOf>
std::vector<std::byte> store_rows(const std::vector<float>& values, std::size_t width, std::int64_t rows, DType dtype, SlotOf slot_of) {
  std::vector<std::byte> bytes(static_cast<std::size_t>(rows) * width * dtype_size(dtype));
  const auto tokens = static_cast<std::int64_t>(values.size() / width);
  for (std::int64_t t = 0; t < tokens; ++t) {
    const std::int64_t slot = slot_of(t);
    for (std::size_t i = 0; i < width; ++i) {
      store_element(bytes.data(), dtype, slot * static_cast<std::int64_t>(width) + static_cast<std::int64_t>(i),
                    values[static_cast<std::size_t>(t) * width + i]);
    }
  }
  return bytes;
}

// The sequences in depth-first order (children by index, a node's own sequences first, in file
// order): every node's subtree is then the range [first[n], first[n] + count[n]) of positions.
struct DepthFirst {
  std::vector<std::size_t> order;    // position -> file sequence
  std::vector<std::int64_t> first;   // per node
  std::vector<std::int64_t> count;   // per node: sequences in its subtree
};

DepthFirst depth_first(const TreeWorkload& w) {
  const std::size_t nodes = w.nodes.size();
  std::vector<std::vector<std::size_t>> ending(nodes);
  for (std::size_t s = 0; s < w.sequences.size(); ++s) {
    ending[static_cast<std::size_t>(w.sequences[s].node)].push_back(s);
  }
  std::vector<std::vector<std::int32_t>> children(nodes);
  std::vector<std::int32_t> stack;  // the root's children, last first
  DepthFirst result{{}, std::vector<std::int64_t>(nodes, 0), std::vector<std::int64_t>(nodes, 0)};
  for (std::size_t n = nodes; n-- > 0;) {
    const std::int32_t parent = w.nodes[n].parent;
    (parent < 0 ? stack : children[static_cast<std::size_t>(parent)]).push_back(static_cast<std::int32_t>(n));
    result.count[n] += static_cast<std::int64_t>(ending[n].size());
    if (parent >= 0) result.count[static_cast<std::size_t>(parent)] += result.count[n];  // children come after parents
  }
  // An explicit stack: a chain of nodes may be deeper than the call stack.
  while (!stack.empty()) {
    const auto n = static_cast<std::size_t>(stack.back());
    stack.pop_back();
    result.first[n] = static_cast<std::int64_t>(result.order.size());
    result.order.insert(result.order.end(), ending[n].begin(), ending[n].end());
    stack.insert(stack.end(), children[n].begin(), children[n].end());  // already last first
  }
  return result;
}

}  // namespace

TreeLevels::TreeLevels(const TreeWorkload& w) : w_(w) {
  const std::size_t width = static_cast<std::size_t>(w.kv_heads) * static_cast<std::size_t>(w.head_dim);
  const std::int64_t queries = w.queries_per_seq;
  const std::vector<std::int64_t> node_end = w.path_lengths();  // where each node ends in its sequences
  const DepthFirst tree = depth_first(w);
  order_ = tree.order;

  // Each node's KV once, as a contiguous buffer (even nodes) or a page pool (odd nodes).
  std::vector<KvSegment> node_kv(w.nodes.size());
  storage_.reserve(2 * w.nodes.size() + 2 * order_.size());
  for (std::size_t n = 0; n < w.nodes.size(); ++n) {
    const TreeNode& node = w.nodes[n];
    KvSegment& segment = node_kv[n];
    segment.length = node.length;
    std::vector<std::int64_t> shape{node.length, w.kv_heads, w.head_dim};
    auto slot_of = [](std::int64_t t) { return t; };
    std::int64_t rows = node.length;
    if (n % 2 == 1) {
      const std::int64_t page_size = w.chunk_size;
      const std::int64_t pages = (node.length + page_size - 1) / page_size;
      const std::int64_t pool_pages = pages + 1;
      for (std::int64_t p = 0; p < pages; ++p) segment.pages.push_back(static_cast<std::int32_t>(pool_pages - 1 - p));
      shape = {pool_pages, page_size, w.kv_heads, w.head_dim};
      rows = pool_pages * page_size;
      storage_.push_back(store_rows(node.k, width, rows, w.dtype, [&](std::int64_t t) {
        return (pool_pages - 1 - t / page_size) * page_size + t % page_size;
      }));
      segment.k = ConstTensorView(storage_.back().data(), w.dtype, Device::cpu, shape);
      storage_.push_back(store_rows(node.v, width, rows, w.dtype, [&](std::int64_t t) {
        return (pool_pages - 1 - t / page_size) * page_size + t % page_size;
      }));
      segment.v = ConstTensorView(storage_.back().data(), w.dtype, Device::cpu, shape);
    } else {
      storage_.push_back(store_rows(node.k, width, rows, w.dtype, slot_of));
      segment.k = ConstTensorView(storage_.back().data(), w.dtype, Device::cpu, shape);
      storage_.push_back(store_rows(node.v, width, rows, w.dtype, slot_of));
      segment.v = ConstTensorView(storage_.back().data(), w.dtype, Device::cpu, shape);
    }
  }

  // Each sequence's own KV: the nodes at the end of its path that hold some of its query tokens
  // (at most queries_per_seq nodes), copied. Those nodes' segments skip it; the sequences under a
  // node that do not skip it read it, in runs of consecutive positions. Nothing here walks whole
  // paths, so a deep tree costs no more than a shallow one with as many nodes.
  std::vector<std::vector<std::int64_t>> skipping(w.nodes.size());  // per node: positions, ascending
  levels_.queries_per_seq = w.queries_per_seq;
  for (std::size_t s = 0; s < order_.size(); ++s) {
    const std::int32_t last = w.sequences[order_[s]].node;
    const std::int64_t shared_end = node_end[static_cast<std::size_t>(last)] - queries;
    std::vector<std::int32_t> own_nodes;  // last node first
    for (std::int32_t n = last; n >= 0; n = w.nodes[static_cast<std::size_t>(n)].parent) {
      if (node_end[static_cast<std::size_t>(n)] <= shared_end) break;
      own_nodes.push_back(n);
      skipping[static_cast<std::size_t>(n)].push_back(static_cast<std::int64_t>(s));
    }
    std::vector<float> k;
    std::vector<float> v;
    for (auto n = own_nodes.rbegin(); n != own_nodes.rend(); ++n) {
      const TreeNode& node = w.nodes[static_cast<std::size_t>(*n)];
      k.insert(k.end(), node.k.begin(), node.k.end());
      v.insert(v.end(), node.v.begin(), node.v.end());
    }
    KvSegment own;
    own.length = static_cast<std::int64_t>(k.size() / width);
    const std::vector<std::int64_t> shape{own.length, w.kv_heads, w.head_dim};
    storage_.push_back(store_rows(k, width, own.length, w.dtype, [](std::int64_t t) { return t; }));
    own.k = ConstTensorView(storage_.back().data(), w.dtype, Device::cpu, shape);
    storage_.push_back(store_rows(v, width, own.length, w.dtype, [](std::int64_t t) { return t; }));
    own.v = ConstTensorView(storage_.back().data(), w.dtype, Device::cpu, shape);
    levels_.own.push_back(std::move(own));
  }
  std::vector<std::size_t> depth(w.nodes.size(), 0);  // level of each node
  for (std::size_t n = 0; n < w.nodes.size(); ++n) {
    const std::int32_t parent = w.nodes[n].parent;
    if (parent >= 0) depth[n] = depth[static_cast<std::size_t>(parent)] + 1;
    // The subtree's positions minus the skipping ones: one segment per run between them.
    std::int64_t begin = tree.first[n];
    const std::int64_t end = tree.first[n] + tree.count[n];
    for (std::size_t i = 0; i <= skipping[n].size(); ++i) {
      const std::int64_t stop = i < skipping[n].size() ? skipping[n][i] : end;
      if (stop > begin) {
        if (levels_.levels.size() <= depth[n]) levels_.levels.resize(depth[n] + 1);
        levels_.levels[depth[n]].push_back(SharedSegment{node_kv[n], begin, stop});
      }
      begin = stop + 1;
    }
  }
}

std::size_t TreeLevels::shared_segments() const {
  std::size_t count = 0;
  for (const auto& level : levels_.levels) count += level.size();
  return count;
}

std::size_t TreeLevels::segments() const { return shared_segments() + levels_.own.size(); }

void TreeLevels::attend(Backend backend, const std::vector<std::byte>& q, std::vector<float>& out, std::vector<float>& lse,
                        const AttentionParams& params) const {
  const std::size_t row_bytes =
      static_cast<std::size_t>(w_.queries_per_seq) * static_cast<std::size_t>(w_.q_heads * w_.head_dim) * dtype_size(w_.dtype);
  const std::size_t out_width = static_cast<std::size_t>(w_.queries_per_seq * w_.q_heads * w_.head_dim);
  const std::size_t lse_width = static_cast<std::size_t>(w_.queries_per_seq * w_.q_heads);
  const std::size_t count = order_.size();
  std::vector<std::byte> q_levels(q.size());
  for (std::size_t s = 0; s < count; ++s) {
    std::copy_n(q.begin() + static_cast<std::ptrdiff_t>(order_[s] * row_bytes), row_bytes, q_levels.begin() + static_cast<std::ptrdiff_t>(s * row_bytes));
  }
  std::vector<float> out_levels(out.size());
  std::vector<float> lse_levels(lse.size());
  const auto tokens = static_cast<std::int64_t>(count) * w_.queries_per_seq;
  backend_attend_levels(backend, levels_, ConstTensorView(q_levels.data(), w_.dtype, Device::cpu, {tokens, w_.q_heads, w_.head_dim}),
                        TensorView{out_levels.data(), DType::f32, Device::cpu, {tokens, w_.q_heads, w_.head_dim}},
                        TensorView{lse_levels.data(), DType::f32, Device::cpu, {tokens, w_.q_heads}}, params);
  for (std::size_t s = 0; s < count; ++s) {
    std::copy_n(out_levels.begin() + static_cast<std::ptrdiff_t>(s * out_width), out_width,
                out.begin() + static_cast<std::ptrdiff_t>(order_[s] * out_width));
    std::copy_n(lse_levels.begin() + static_cast<std::ptrdiff_t>(s * lse_width), lse_width,
                lse.begin() + static_cast<std::ptrdiff_t>(order_[s] * lse_width));
  }
}

}  // namespace chunktree::harness
