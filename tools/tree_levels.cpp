#include "tree_levels.hpp"

#include <algorithm>
#include <map>
#include <numeric>

#include "chunktree/numeric.hpp"

namespace chunktree::tools {
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

}  // namespace

TreeLevels::TreeLevels(const TreeWorkload& w) : w_(w) {
  const std::size_t width = static_cast<std::size_t>(w.kv_heads) * static_cast<std::size_t>(w.head_dim);
  const std::int64_t queries = w.queries_per_seq;
  const std::size_t count = w.sequences.size();
  std::vector<std::vector<std::int32_t>> paths(count);
  for (std::size_t s = 0; s < count; ++s) paths[s] = w.path(w.sequences[s].node);
  order_.resize(count);
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  std::stable_sort(order_.begin(), order_.end(), [&](std::size_t a, std::size_t b) { return paths[a] < paths[b]; });

  // Each node's KV once, as a contiguous buffer (even nodes) or a page pool (odd nodes).
  std::vector<KvSegment> node_kv(w.nodes.size());
  storage_.reserve(2 * w.nodes.size() + 2 * count);
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

  // Which (node, depth) each sequence reads as a shared segment, and its own tokens.
  std::map<std::pair<std::size_t, std::int32_t>, std::vector<std::int64_t>> readers;  // (depth, node) -> sequences, in order
  levels_.queries_per_seq = w.queries_per_seq;
  for (std::size_t s = 0; s < count; ++s) {
    const std::vector<std::int32_t>& path = paths[order_[s]];
    const std::int64_t length = w.path_length(w.sequences[order_[s]].node);
    std::int64_t end = 0;
    std::size_t depth = 0;
    for (; depth < path.size(); ++depth) {
      const std::int64_t node_end = end + w.nodes[static_cast<std::size_t>(path[depth])].length;
      if (node_end > length - queries) break;
      readers[{depth, path[depth]}].push_back(static_cast<std::int64_t>(s));
      end = node_end;
    }
    // Own KV: tokens [end, length) of the path, copied.
    std::vector<float> k;
    std::vector<float> v;
    for (; depth < path.size(); ++depth) {
      const TreeNode& node = w.nodes[static_cast<std::size_t>(path[depth])];
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
  for (const auto& [key, sequences] : readers) {
    const auto [depth, node] = key;
    if (levels_.levels.size() <= depth) levels_.levels.resize(depth + 1);
    // One segment per maximal run of consecutive sequences.
    for (std::size_t i = 0; i < sequences.size();) {
      std::size_t j = i + 1;
      while (j < sequences.size() && sequences[j] == sequences[j - 1] + 1) ++j;
      levels_.levels[depth].push_back(SharedSegment{node_kv[static_cast<std::size_t>(node)], sequences[i], sequences[j - 1] + 1});
      i = j;
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

}  // namespace chunktree::tools
