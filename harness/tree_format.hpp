// The tree test format (docs/FORMATS.md, "Tree format"): an arbitrary prefix tree of KV,
// sequences that end anywhere in it, and each sequence's expected attention output from the
// fp64 reference. Reading, writing, generating, and checking through the library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/types.hpp"
#include "harness/check.hpp"

namespace chunktree::harness {

// The first line of every tree file is "chunktree-tree 1".
inline constexpr std::string_view kTreeMagic = "chunktree-tree";
inline constexpr int kTreeVersion = 1;

struct TreeNode {
  std::int64_t id = 0;       // as written in the file
  std::int32_t parent = -1;  // index into TreeWorkload::nodes; -1: a child of the root
  std::int64_t length = 0;   // tokens, at least 1
  std::vector<float> k;      // [length, kv_heads, head_dim]
  std::vector<float> v;      // [length, kv_heads, head_dim]
};

struct TreeSequence {
  std::int32_t node = 0;   // index into TreeWorkload::nodes of the node where it ends
  std::vector<float> q;    // [queries_per_seq, q_heads, head_dim]
  std::vector<float> o;    // [queries_per_seq, q_heads, head_dim]: expected (or, in a dump, computed) output
  std::vector<float> lse;  // [queries_per_seq, q_heads]: natural log of Σ exp(scale · q·k) over the tokens it sees
  std::size_t line = 0;    // line of its record in the file it was read from; 0 if generated
};

struct TreeWorkload {
  int q_heads = 1;
  int kv_heads = 1;
  int head_dim = 64;
  int chunk_size = 16;
  DType dtype = DType::bf16;
  std::optional<float> scale;           // absent: 1/sqrt(head_dim)
  int queries_per_seq = 1;              // query token i of a sequence of L tokens sees tokens 0..L-queries_per_seq+i
  std::string comment;                  // written as '#' lines under the first line; not read back
  std::vector<TreeNode> nodes;          // every parent before its children
  std::vector<TreeSequence> sequences;  // in file order, which is the order they are added

  // The softmax scale the checker and the generator use, as fp32.
  float softmax_scale() const;
  // Node indices from the root's child down to `node`.
  std::vector<std::int32_t> path(std::int32_t node) const;
  // Tokens of the sequence that ends at `node`.
  std::int64_t path_length(std::int32_t node) const;
  // path_length of every node, in one pass over the nodes.
  std::vector<std::int64_t> path_lengths() const;
};

// Values per token: of K or V (kv_heads · head_dim), and of Q or O (q_heads · head_dim).
std::size_t kv_width(const TreeWorkload& w);
std::size_t q_width(const TreeWorkload& w);

// Throws chunktree::Error (code format) naming the file and line when the file is malformed.
TreeWorkload read_tree_file(const std::string& path);
void write_tree_file(const std::string& path, const TreeWorkload& workload);

// Fills every sequence's o and lse from the fp64 reference over its root-to-node KV.
void compute_expected(TreeWorkload& workload);

// "tree_<seed>_<index>.txt"
std::string tree_file_name(std::uint64_t seed, int index);
// The random workload gentrees writes as file `index` of `seed` (inputs and expected values).
// min_sequences > 0 asks for a large workload of at least that many sequences, with short
// private parts under a small shared tree.
TreeWorkload generate_tree_workload(std::uint64_t seed, int index, int min_sequences = 0, bool allow_f32 = true);

}  // namespace chunktree::harness
