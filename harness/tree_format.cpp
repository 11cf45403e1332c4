// The tree test format: reading, writing, expected values and generating (checking a file
// through the library: tree_check.cpp). docs/FORMATS.md, "Tree format", is the specification.
#include "harness/tree_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <span>
#include <unordered_map>

#include "chunktree/attention.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/reference.hpp"
#include "harness/random.hpp"
#include "harness/text_arrays.hpp"

namespace chunktree::harness {

float TreeWorkload::softmax_scale() const {
  return scale.value_or(static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim))));
}

std::int64_t TreeWorkload::path_length(std::int32_t node) const {
  std::int64_t tokens = 0;
  for (std::int32_t index : path(node)) tokens += nodes[static_cast<std::size_t>(index)].length;
  return tokens;
}

std::vector<std::int64_t> TreeWorkload::path_lengths() const {
  std::vector<std::int64_t> lengths(nodes.size());
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const std::int32_t parent = nodes[n].parent;  // every parent comes before its children
    lengths[n] = (parent < 0 ? 0 : lengths[static_cast<std::size_t>(parent)]) + nodes[n].length;
  }
  return lengths;
}

std::vector<std::int32_t> TreeWorkload::path(std::int32_t node) const {
  std::vector<std::int32_t> nodes_on_path;
  for (; node >= 0; node = nodes[static_cast<std::size_t>(node)].parent) nodes_on_path.push_back(node);
  std::reverse(nodes_on_path.begin(), nodes_on_path.end());
  return nodes_on_path;
}

std::size_t kv_width(const TreeWorkload& w) {
  return static_cast<std::size_t>(w.kv_heads) * static_cast<std::size_t>(w.head_dim);
}
std::size_t q_width(const TreeWorkload& w) {
  return static_cast<std::size_t>(w.q_heads) * static_cast<std::size_t>(w.head_dim);
}

namespace {

// Token ids are int32, and each (node, position) gets its own, so all nodes together hold
// fewer tokens than this.
constexpr std::int64_t kMaxTotalTokens = std::numeric_limits<std::int32_t>::max();
constexpr std::int64_t kMaxHeads = 256;

std::string number_text(float value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// ---------------------------------------------------------------------------------------
// Reading

bool is_blank_or_comment(std::string_view line) {
  const std::size_t first = line.find_first_not_of(" \t\r");
  return first == std::string_view::npos || line[first] == '#';
}

// The next line that is neither blank nor a comment.
std::string_view next_record(LineReader& reader, const std::string& what) {
  for (;;) {
    const std::string_view line = reader.next(what);
    if (!is_blank_or_comment(line)) return line;
  }
}

void read_format_line(LineReader& reader) {
  const std::string_view line = reader.next("the format line 'chunktree-tree 1'");
  if (is_blank_or_comment(line)) {
    reader.fail("the first line must be the format line 'chunktree-tree 1'; blank and comment lines may only follow it");
  }
  const auto words = LineReader::words(line);
  if (words.size() != 2 || words[0] != kTreeMagic) {
    reader.fail("not a tree-format file: the first line must be 'chunktree-tree 1'");
  }
  const std::int64_t version = reader.integer(words[1], "the format version");
  if (version != kTreeVersion) {
    reader.fail("tree-format version " + std::to_string(version) + " is not supported; this build reads version " +
                std::to_string(kTreeVersion));
  }
}

int integer_in(const LineReader& reader, std::string_view key, std::string_view value, std::int64_t min,
               std::int64_t max) {
  return static_cast<int>(reader.integer(value, key, min, max));
}

int integer_of(const LineReader& reader, std::string_view key, std::string_view value,
               std::initializer_list<int> allowed) {
  const std::int64_t number = reader.integer(value, key);
  std::string choices;
  for (int choice : allowed) {
    if (number == choice) return choice;
    choices += (choices.empty() ? "" : ", ") + std::to_string(choice);
  }
  reader.fail(std::string(key) + " must be one of " + choices + ", got " + std::to_string(number));
}

DType storage_dtype(const LineReader& reader, std::string_view value) {
  if (value == "bf16") return DType::bf16;
  if (value == "f16") return DType::f16;
  if (value == "f32") return DType::f32;
  reader.fail("dtype must be bf16, f16 or f32, got " + quote_word(value));
}

float softmax_scale_value(const LineReader& reader, std::string_view value) {
  const float scale = reader.number(value, "scale");
  if (!std::isfinite(scale) || scale <= 0.0f || scale > kMaxScale) {
    char largest[32];
    std::snprintf(largest, sizeof largest, "%.3g", static_cast<double>(kMaxScale));
    reader.fail("scale must be a positive fp32 number of at most " + std::string(largest) + " (the kernels take scale * log2(e) in fp32), got " +
                quote_word(value));
  }
  return scale;
}

constexpr std::int64_t kMaxQueriesPerSeq = 64;

void read_header_field(const LineReader& reader, std::string_view key, std::string_view value, TreeWorkload& w) {
  if (key == "q_heads") {
    w.q_heads = integer_in(reader, key, value, 1, kMaxHeads);
  } else if (key == "kv_heads") {
    w.kv_heads = integer_in(reader, key, value, 1, kMaxHeads);
  } else if (key == "head_dim") {
    w.head_dim = integer_of(reader, key, value, {64, 128, 256});
  } else if (key == "chunk_size") {
    w.chunk_size = integer_of(reader, key, value, {16, 32, 64, 128});
  } else if (key == "dtype") {
    w.dtype = storage_dtype(reader, value);
  } else if (key == "scale") {
    w.scale = softmax_scale_value(reader, value);
  } else if (key == "queries_per_seq") {
    w.queries_per_seq = integer_in(reader, key, value, 1, kMaxQueriesPerSeq);
  } else {
    reader.fail("unknown header field " + quote_word(key) +
                "; the fields are q_heads, kv_heads, head_dim, chunk_size, dtype, scale and queries_per_seq, "
                "followed by 'nodes N'");
  }
}

using FieldLines = std::map<std::string, std::size_t, std::less<>>;

// Called on the `nodes` line: every required field was given, and the heads fit together.
void check_header_complete(const LineReader& reader, const FieldLines& lines, const TreeWorkload& w) {
  for (const char* key : {"q_heads", "kv_heads", "head_dim", "chunk_size", "dtype"}) {
    if (!lines.contains(key))
      reader.fail(std::string("the header has no ") + key + " field; it must come before the 'nodes' line");
  }
  if (w.q_heads % w.kv_heads != 0) {
    reader.fail("q_heads " + std::to_string(w.q_heads) + " (line " + std::to_string(lines.find("q_heads")->second) +
                ") is not a multiple of kv_heads " + std::to_string(w.kv_heads) + " (line " +
                std::to_string(lines.find("kv_heads")->second) + ")");
  }
}

// A `KEYWORD COUNT` line (nodes, sequences).
std::int64_t read_count_line(LineReader& reader, std::string_view keyword) {
  const auto words = LineReader::words(next_record(reader, "the '" + std::string(keyword) + " COUNT' line"));
  if (words.size() != 2 || words[0] != keyword) {
    reader.fail("expected '" + std::string(keyword) + " COUNT', got " + quote_word(words.empty() ? "" : words[0]) +
                " with " + std::to_string(words.size()) + " words");
  }
  return integer_in(reader, keyword, words[1], 1, kMaxTotalTokens);
}

// `KEY VALUE` lines in any order, up to and including the `nodes N` line; returns N.
std::int64_t read_header(LineReader& reader, TreeWorkload& w) {
  FieldLines lines;
  for (;;) {
    const auto words = LineReader::words(next_record(reader, "a header field or the 'nodes COUNT' line"));
    if (words.size() != 2) {
      reader.fail("expected a header field 'KEY VALUE' or 'nodes COUNT', got " + std::to_string(words.size()) +
                  " words");
    }
    if (words[0] == "nodes") {
      check_header_complete(reader, lines, w);
      return integer_in(reader, "nodes", words[1], 1, kMaxTotalTokens);
    }
    if (const auto seen = lines.find(words[0]); seen != lines.end()) {
      reader.fail("header field " + quote_word(words[0]) + " appears twice (first on line " +
                  std::to_string(seen->second) + ")");
    }
    read_header_field(reader, words[0], words[1], w);
    lines.emplace(std::string(words[0]), reader.line_number());
  }
}

// K, V and Q go into the cache's dtype, so they must be finite and stored exactly by it.
void require_storable(const LineReader& reader, std::span<const float> values, DType dtype, const std::string& what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float value = values[i];
    if (!std::isfinite(value)) {
      reader.fail(what + ": value " + std::to_string(i + 1) + " is " + number_text(value) + "; inputs must be finite");
    }
    if (round_to(dtype, value) != value) {
      reader.fail(what + ": value " + std::to_string(i + 1) + " (" + number_text(value) + ") is not representable in " +
                  std::string(to_string(dtype)) + " (nearest: " + number_text(round_to(dtype, value)) +
                  "); write inputs already rounded to the dtype");
    }
  }
}

// One line of `width` input values.
std::vector<float> read_input_row(LineReader& reader, std::size_t width, DType dtype, const std::string& what) {
  std::vector<float> values = reader.floats(next_record(reader, what), width, what);
  require_storable(reader, values, dtype, what);
  return values;
}

// A node's K or V: one line per token.
std::vector<float> read_token_rows(LineReader& reader, std::int64_t tokens, std::size_t width, DType dtype,
                                   const std::string& what) {
  std::vector<float> values;
  for (std::int64_t token = 0; token < tokens; ++token) {
    const std::vector<float> row = read_input_row(reader, width, dtype, what + " token " + std::to_string(token));
    values.insert(values.end(), row.begin(), row.end());
  }
  return values;
}

using NodeIndex = std::unordered_map<std::int64_t, std::int32_t>;  // node id -> index

std::int32_t parent_index(const LineReader& reader, const NodeIndex& index_of, std::int64_t parent, std::int64_t id) {
  if (parent == -1) return -1;
  const auto found = index_of.find(parent);
  if (found == index_of.end()) {
    reader.fail(
        "parent " + std::to_string(parent) + " of node " + std::to_string(id) +
        " is not the id of an earlier node; write every node after its parent (parent -1: a child of the root)");
  }
  return found->second;
}

// The `node ID PARENT LENGTH` line of record `number` of `count`.
TreeNode read_node_line(LineReader& reader, const NodeIndex& index_of, std::int64_t number, std::int64_t count) {
  const std::string what = "node record " + std::to_string(number) + " of " + std::to_string(count);
  const auto words = LineReader::words(next_record(reader, what + " ('node ID PARENT LENGTH')"));
  if (words.size() != 4 || words[0] != "node") {
    reader.fail("expected " + what + " as 'node ID PARENT LENGTH', got " + quote_word(words.empty() ? "" : words[0]) +
                " with " + std::to_string(words.size()) + " words");
  }
  TreeNode node;
  node.id = integer_in(reader, "the node id", words[1], 0, std::numeric_limits<std::int32_t>::max());
  if (index_of.contains(node.id)) reader.fail("node id " + std::to_string(node.id) + " is used twice");
  node.parent = parent_index(reader, index_of, reader.integer(words[2], "the parent id"), node.id);
  node.length = integer_in(reader, "the node length", words[3], 1, kMaxTotalTokens);
  return node;
}

NodeIndex read_nodes(LineReader& reader, std::int64_t count, TreeWorkload& w) {
  NodeIndex index_of;
  std::int64_t total_tokens = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    TreeNode node = read_node_line(reader, index_of, i + 1, count);
    total_tokens += node.length;
    if (total_tokens > kMaxTotalTokens) reader.fail("the nodes hold more than 2^31 - 1 tokens in all");
    const std::string id = std::to_string(node.id);
    node.k = read_token_rows(reader, node.length, kv_width(w), w.dtype, "K of node " + id);
    node.v = read_token_rows(reader, node.length, kv_width(w), w.dtype, "V of node " + id);
    index_of.emplace(node.id, static_cast<std::int32_t>(i));
    w.nodes.push_back(std::move(node));
  }
  return index_of;
}

TreeSequence read_sequence(LineReader& reader, const NodeIndex& index_of, const TreeWorkload& w,
                           std::span<const std::int64_t> path_lengths, std::int64_t number, std::int64_t count) {
  const std::string what = "sequence record " + std::to_string(number) + " of " + std::to_string(count);
  const auto words = LineReader::words(next_record(reader, what + " ('sequence NODE')"));
  if (words.size() != 2 || words[0] != "sequence") {
    reader.fail("expected " + what + " as 'sequence NODE', got " + quote_word(words.empty() ? "" : words[0]) +
                " with " + std::to_string(words.size()) + " words");
  }
  const std::int64_t node_id = reader.integer(words[1], "the sequence's node id");
  const auto found = index_of.find(node_id);
  if (found == index_of.end())
    reader.fail("sequence " + std::to_string(number - 1) + " ends at node " + std::to_string(node_id) +
                ", which does not exist");
  TreeSequence sequence;
  sequence.node = found->second;
  sequence.line = reader.line_number();
  const std::string name = " of sequence " + std::to_string(number - 1);
  const std::int64_t tokens = path_lengths[static_cast<std::size_t>(sequence.node)];
  if (tokens < w.queries_per_seq) {
    reader.fail("sequence " + std::to_string(number - 1) + " has " + std::to_string(tokens) +
                " tokens, fewer than queries_per_seq (" + std::to_string(w.queries_per_seq) + ")");
  }
  // One line per query token: Q lines, then O lines, then LSE lines. Expected values may be
  // anything a backend can write, NaN included: the check fails them.
  const auto queries = static_cast<std::size_t>(w.queries_per_seq);
  const auto token_name = [&](const char* what, std::size_t i) {
    return std::string(what) + (queries > 1 ? " of query token " + std::to_string(i) : std::string()) + name;
  };
  for (std::size_t i = 0; i < queries; ++i) {
    const std::vector<float> row = read_input_row(reader, q_width(w), w.dtype, token_name("Q", i));
    sequence.q.insert(sequence.q.end(), row.begin(), row.end());
  }
  for (std::size_t i = 0; i < queries; ++i) {
    const std::vector<float> row = reader.floats(next_record(reader, token_name("O", i)), q_width(w), token_name("O", i));
    sequence.o.insert(sequence.o.end(), row.begin(), row.end());
  }
  for (std::size_t i = 0; i < queries; ++i) {
    const std::vector<float> row =
        reader.floats(next_record(reader, token_name("LSE", i)), static_cast<std::size_t>(w.q_heads), token_name("LSE", i));
    sequence.lse.insert(sequence.lse.end(), row.begin(), row.end());
  }
  return sequence;
}

void read_sequences(LineReader& reader, const NodeIndex& index_of, TreeWorkload& w) {
  const std::int64_t count = read_count_line(reader, "sequences");
  const std::vector<std::int64_t> path_lengths = w.path_lengths();
  for (std::int64_t i = 0; i < count; ++i) {
    w.sequences.push_back(read_sequence(reader, index_of, w, path_lengths, i + 1, count));
  }
  while (!reader.at_end()) {
    if (!is_blank_or_comment(reader.next("the end of the file"))) {
      reader.fail("unexpected content after the last of the " + std::to_string(count) +
                  " sequences (the 'sequences' line gives their count)");
    }
  }
}

}  // namespace

TreeWorkload read_tree_file(const std::string& path) {
  LineReader reader(path);
  TreeWorkload workload;
  read_format_line(reader);
  const std::int64_t node_count = read_header(reader, workload);
  const NodeIndex index_of = read_nodes(reader, node_count, workload);
  read_sequences(reader, index_of, workload);
  return workload;
}

// ---------------------------------------------------------------------------------------
// Writing

namespace {

void write_rows(std::FILE* file, std::span<const float> values, std::size_t width) {
  for (std::size_t begin = 0; begin < values.size(); begin += width) write_floats(file, values.subspan(begin, width));
}

void write_comment(std::FILE* file, std::string_view comment) {
  while (!comment.empty()) {
    const std::size_t end = std::min(comment.find('\n'), comment.size());
    std::fprintf(file, "# %.*s\n", static_cast<int>(end), comment.data());
    comment.remove_prefix(std::min(end + 1, comment.size()));
  }
}

void write_header(std::FILE* file, const TreeWorkload& w) {
  std::fprintf(file, "%.*s %d\n", static_cast<int>(kTreeMagic.size()), kTreeMagic.data(), kTreeVersion);
  write_comment(file, w.comment);
  const std::string_view dtype = to_string(w.dtype);
  std::fprintf(file, "q_heads %d\nkv_heads %d\nhead_dim %d\nchunk_size %d\ndtype %.*s\n", w.q_heads, w.kv_heads,
               w.head_dim, w.chunk_size, static_cast<int>(dtype.size()), dtype.data());
  if (w.scale) {
    std::fputs("scale ", file);
    write_floats(file, std::span<const float>(&*w.scale, 1));
  }
  std::fprintf(file, "queries_per_seq %d\n", w.queries_per_seq);
}

}  // namespace

void write_tree_file(const std::string& path, const TreeWorkload& w) {
  OutputFile output(path);
  std::FILE* file = output.get();
  write_header(file, w);
  std::fprintf(file, "nodes %zu\n", w.nodes.size());
  for (const TreeNode& node : w.nodes) {
    const std::int64_t parent_id = node.parent < 0 ? -1 : w.nodes[static_cast<std::size_t>(node.parent)].id;
    std::fprintf(file, "node %lld %lld %lld\n", static_cast<long long>(node.id), static_cast<long long>(parent_id),
                 static_cast<long long>(node.length));
    write_rows(file, node.k, kv_width(w));
    write_rows(file, node.v, kv_width(w));
  }
  std::fprintf(file, "sequences %zu\n", w.sequences.size());
  for (const TreeSequence& sequence : w.sequences) {
    std::fprintf(file, "sequence %lld\n", static_cast<long long>(w.nodes[static_cast<std::size_t>(sequence.node)].id));
    write_rows(file, sequence.q, q_width(w));
    write_rows(file, sequence.o, q_width(w));
    write_rows(file, sequence.lse, static_cast<std::size_t>(w.q_heads));
  }
  output.close();
}

// ---------------------------------------------------------------------------------------
// Expected values: the fp64 reference over each sequence's whole KV, no tree involved.

namespace {

// A sequence's K or V: the arrays of the nodes on its path, concatenated.
std::vector<float> path_values(const TreeWorkload& w, std::span<const std::int32_t> path,
                               std::vector<float> TreeNode::*array) {
  std::vector<float> values;
  for (std::int32_t node : path) {
    const std::vector<float>& part = w.nodes[static_cast<std::size_t>(node)].*array;
    values.insert(values.end(), part.begin(), part.end());
  }
  return values;
}

}  // namespace

void compute_expected(TreeWorkload& w) {
  const std::size_t width = q_width(w);
  const auto heads = static_cast<std::size_t>(w.q_heads);
  const auto queries = static_cast<std::size_t>(w.queries_per_seq);
  std::vector<double> o(width);
  std::vector<double> lse(heads);
  for (TreeSequence& sequence : w.sequences) {
    const std::vector<std::int32_t> path = w.path(sequence.node);
    const std::vector<float> k = path_values(w, path, &TreeNode::k);
    const std::vector<float> v = path_values(w, path, &TreeNode::v);
    const auto tokens = static_cast<std::int64_t>(k.size() / kv_width(w));
    sequence.o.resize(queries * width);
    sequence.lse.resize(queries * heads);
    for (std::size_t i = 0; i < queries; ++i) {
      // Query token i sees the sequence up to and including itself.
      const std::int64_t seen = tokens - static_cast<std::int64_t>(queries) + static_cast<std::int64_t>(i) + 1;
      reference::attention(sequence.q.data() + i * width, w.q_heads, k.data(), v.data(), seen, w.kv_heads, w.head_dim,
                           static_cast<double>(w.softmax_scale()), o.data(), lse.data());
      std::copy(o.begin(), o.end(), sequence.o.begin() + static_cast<std::ptrdiff_t>(i * width));
      std::copy(lse.begin(), lse.end(), sequence.lse.begin() + static_cast<std::ptrdiff_t>(i * heads));
    }
  }
}

bool is_tree_file(const std::string& path) {
  // The first line that is neither blank nor a comment decides, so that a tree file with one of
  // those first gets the tree reader's error (the format line comes first), not the seed reader's.
  const std::string head = input_file_head(path, 4096);
  for (std::size_t begin = 0; begin < head.size();) {
    const std::size_t end = std::min(head.find('\n', begin), head.size());
    const std::string_view line = std::string_view(head).substr(begin, end - begin);
    if (!is_blank_or_comment(line)) {
      const auto words = LineReader::words(line);
      return !words.empty() && words[0] == kTreeMagic;
    }
    begin = end + 1;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Generating random workloads

namespace {

// A uniform index into a container of `size` elements.
std::size_t random_index(Random& rng, std::size_t size) {
  return static_cast<std::size_t>(rng.integer(0, static_cast<std::int64_t>(size) - 1));
}

// One shape per file, cycled by index so that any 12 consecutive files cover every pair of
// head_dim and chunk size, and every pair of head_dim and GQA group.
void choose_shape(TreeWorkload& w, Random& rng, int index, bool large, bool allow_f32) {
  static constexpr int kHeadDims[] = {64, 128, 256};
  static constexpr int kChunkSizes[] = {16, 32, 64, 128};
  static constexpr int kGroups[] = {1, 2, 4, 8};
  static constexpr int kKvHeads[] = {1, 2, 3, 4, 8};
  w.head_dim = kHeadDims[index % 3];
  w.chunk_size = kChunkSizes[index % 4];
  const int group = kGroups[(index / 3) % 4];
  w.dtype = allow_f32 && index % 5 == 4 ? DType::f32 : (index + index / 4) % 2 == 0 ? DType::bf16 : DType::f16;
  // Values per token bound the file size: a few MB per file, tens of MB for large workloads.
  const int kv_limit = large ? 512 : 1024;  // kv_heads · head_dim
  const int q_limit = large ? 2048 : 4096;  // q_heads · head_dim
  std::vector<int> kv_choices;
  for (int kv : kKvHeads) {
    if (kv * w.head_dim <= kv_limit && kv * group * w.head_dim <= q_limit) kv_choices.push_back(kv);
  }
  w.kv_heads = kv_choices[random_index(rng, kv_choices.size())];
  w.q_heads = w.kv_heads * group;
  if (rng.chance(0.5)) w.scale = static_cast<float>(rng.uniform(0.7, 1.4) / std::sqrt(static_cast<double>(w.head_dim)));
}

// N(0, sigma²) values rounded to the dtype, never zero (a zero hides indexing mistakes).
std::vector<float> random_values(Random& rng, std::size_t count, DType dtype, double sigma) {
  std::vector<float> values(count);
  for (float& value : values) {
    do {
      value = round_to(dtype, static_cast<float>(rng.normal() * sigma));
    } while (value == 0.0f);
  }
  return values;
}

// Mostly lengths that are not multiples of the chunk size, some that are, some single tokens.
std::int64_t random_length(Random& rng, int chunk_size, std::int64_t cap, std::int64_t remaining) {
  std::int64_t length = 1;
  const double kind = rng.uniform();
  if (kind < 0.15) {
    length = 1;
  } else if (kind < 0.3) {
    length = chunk_size * rng.integer(1, std::max<std::int64_t>(1, cap / chunk_size));
  } else {
    // Half uniform, half log-uniform: short nodes are common in real trees, and they leave
    // budget for more nodes.
    const std::int64_t top = std::max<std::int64_t>(3, cap);
    do {
      length = rng.chance(0.5) ? rng.integer(2, top)
                               : static_cast<std::int64_t>(std::exp(rng.uniform(std::log(2.0), std::log(top + 1.0))));
    } while (length % chunk_size == 0);
  }
  return std::clamp<std::int64_t>(length, 1, remaining);
}

std::int32_t add_node(TreeWorkload& w, Random& rng, std::int32_t parent, std::int64_t length, double sigma) {
  TreeNode node;
  node.id = static_cast<std::int64_t>(w.nodes.size());
  node.parent = parent;
  node.length = length;
  node.k = random_values(rng, static_cast<std::size_t>(length) * kv_width(w), w.dtype, sigma);
  node.v = random_values(rng, static_cast<std::size_t>(length) * kv_width(w), w.dtype, sigma);
  w.nodes.push_back(std::move(node));
  return static_cast<std::int32_t>(w.nodes.size() - 1);
}

struct TreeLimits {
  int depth = 1;
  int fanout = 1;
  std::int64_t token_budget = 0;
  std::size_t nodes = 0;  // at most
};

// Grows a tree of up to limits.nodes nodes, each attached under a random node (or the root)
// that still has room: depth below limits.depth and fewer than limits.fanout children.
void grow_tree(TreeWorkload& w, Random& rng, const TreeLimits& limits, double sigma) {
  const std::int64_t length_cap = std::clamp<std::int64_t>(limits.token_budget / 3, 8, 300);
  int root_children = 0;
  std::vector<int> depth;     // per node: 1 for a child of the root
  std::vector<int> children;  // per node
  std::int64_t tokens = 0;
  while (w.nodes.size() < limits.nodes && tokens < limits.token_budget) {
    std::vector<std::int32_t> open;  // parents with room; -1 is the root
    if (root_children < limits.fanout) open.push_back(-1);
    for (std::size_t i = 0; i < w.nodes.size(); ++i) {
      if (depth[i] < limits.depth && children[i] < limits.fanout) open.push_back(static_cast<std::int32_t>(i));
    }
    if (open.empty()) return;
    const std::int32_t parent = open[random_index(rng, open.size())];
    const std::int64_t length = random_length(rng, w.chunk_size, length_cap, limits.token_budget - tokens);
    add_node(w, rng, parent, length, sigma);
    tokens += length;
    if (parent < 0) {
      root_children += 1;
    } else {
      children[static_cast<std::size_t>(parent)] += 1;
    }
    depth.push_back(parent < 0 ? 1 : depth[static_cast<std::size_t>(parent)] + 1);
    children.push_back(0);
  }
}

void add_sequence(TreeWorkload& w, std::int32_t node) {
  TreeSequence sequence;
  sequence.node = node;
  w.sequences.push_back(std::move(sequence));
}

std::vector<bool> interior_nodes(const TreeWorkload& w) {
  std::vector<bool> interior(w.nodes.size(), false);
  for (const TreeNode& node : w.nodes) {
    if (node.parent >= 0) interior[static_cast<std::size_t>(node.parent)] = true;
  }
  return interior;
}

// Every leaf gets a sequence (sometimes 2 or 3 identical ones); some interior nodes do too,
// and each file has at least one sequence at an interior node (if there is one) and one node
// where several sequences end.
void end_sequences_on_tree(TreeWorkload& w, Random& rng) {
  const std::vector<bool> interior = interior_nodes(w);
  std::vector<std::int32_t> interior_list;
  bool ends_inside = false;
  bool repeats = false;
  for (std::size_t i = 0; i < w.nodes.size(); ++i) {
    std::int64_t copies = 0;
    if (interior[i]) {
      interior_list.push_back(static_cast<std::int32_t>(i));
      copies = rng.chance(0.3) ? (rng.chance(0.2) ? 2 : 1) : 0;
      ends_inside = ends_inside || copies > 0;
    } else {
      copies = rng.chance(0.15) ? rng.integer(2, 3) : 1;
    }
    repeats = repeats || copies > 1;
    for (std::int64_t c = 0; c < copies; ++c) add_sequence(w, static_cast<std::int32_t>(i));
  }
  if (!ends_inside && !interior_list.empty()) add_sequence(w, interior_list[random_index(rng, interior_list.size())]);
  if (!repeats) add_sequence(w, w.sequences[random_index(rng, w.sequences.size())].node);
}

// Large workloads: short private leaves (1..8 tokens) under random nodes of the shared tree,
// and now and then a sequence ending at a shared node, until there are enough sequences.
void add_private_leaves(TreeWorkload& w, Random& rng, int min_sequences, double sigma) {
  const std::size_t shared_nodes = w.nodes.size();
  while (w.sequences.size() < static_cast<std::size_t>(min_sequences)) {
    const auto at = static_cast<std::int32_t>(random_index(rng, shared_nodes));
    add_sequence(w, rng.chance(0.1) ? at : add_node(w, rng, at, rng.integer(1, 8), sigma));
  }
}

// File order is the order of add: shuffled, so that splits and the planner's reordering happen.
void shuffle_sequences(TreeWorkload& w, Random& rng) {
  for (std::size_t i = w.sequences.size(); i > 1; --i) std::swap(w.sequences[i - 1], w.sequences[random_index(rng, i)]);
}

TreeLimits random_limits(const TreeWorkload& w, Random& rng, bool large) {
  TreeLimits limits;
  limits.depth = static_cast<int>(rng.integer(1, 6));
  limits.fanout = static_cast<int>(rng.integer(1, 4));
  const auto values_per_token = static_cast<std::int64_t>(2 * kv_width(w));
  limits.token_budget = large ? std::clamp<std::int64_t>(300'000 / values_per_token, 200, 1500)
                              : std::clamp<std::int64_t>(600'000 / values_per_token, 300, 4000);
  limits.nodes = static_cast<std::size_t>(rng.integer(3, large ? 16 : 40));
  return limits;
}

std::string describe_workload(const TreeWorkload& w, std::uint64_t seed, int index, const TreeLimits& limits) {
  std::int64_t stored = 0;
  for (const TreeNode& node : w.nodes) stored += node.length;
  std::int64_t without_sharing = 0;
  for (const TreeSequence& sequence : w.sequences) {
    for (std::int32_t node : w.path(sequence.node)) without_sharing += w.nodes[static_cast<std::size_t>(node)].length;
  }
  return "generated by chunktree gentrees, seed " + std::to_string(seed) + ", file " + std::to_string(index) + ": " +
         std::to_string(w.nodes.size()) + " nodes (depth up to " + std::to_string(limits.depth) + ", fan-out up to " +
         std::to_string(limits.fanout) + "), " + std::to_string(w.sequences.size()) + " sequences, " +
         std::to_string(stored) + " KV tokens stored (" + std::to_string(without_sharing) + " without sharing)";
}

}  // namespace

std::string tree_file_name(std::uint64_t seed, int index) {
  return "tree_" + std::to_string(seed) + "_" + std::to_string(index) + ".txt";
}

TreeWorkload generate_tree_workload(std::uint64_t seed, int index, int min_sequences, bool allow_f32) {
  Random rng(seed_from(tree_file_name(seed, index)));
  const bool large = min_sequences > 0;
  TreeWorkload w;
  choose_shape(w, rng, index, large, allow_f32);
  const double sigma = rng.uniform(0.6, 1.4);
  const TreeLimits limits = random_limits(w, rng, large);
  grow_tree(w, rng, limits, sigma);
  end_sequences_on_tree(w, rng);
  add_private_leaves(w, rng, min_sequences, sigma);
  shuffle_sequences(w, rng);
  // Every fourth file has several query tokens per sequence (files 3, 6, 9, 12, …: each chunk
  // size in turn); sequences shorter than that are left out (unless that would leave none: then
  // the longest sequence sets the count).
  if ((index + index / 4) % 4 == 3) {
    static constexpr int kQueries[] = {2, 3, 8, 16};
    const int queries = kQueries[(index / 4) % 4];
    std::vector<TreeSequence> long_enough;
    std::int64_t longest = 0;
    for (TreeSequence& sequence : w.sequences) {
      longest = std::max(longest, w.path_length(sequence.node));
      if (w.path_length(sequence.node) >= queries) long_enough.push_back(sequence);
    }
    if (long_enough.empty()) {
      w.queries_per_seq = static_cast<int>(std::min<std::int64_t>(queries, longest));
      std::erase_if(w.sequences, [&](const TreeSequence& sequence) { return w.path_length(sequence.node) < w.queries_per_seq; });
    } else {
      w.queries_per_seq = queries;
      w.sequences = std::move(long_enough);
    }
  }
  for (TreeSequence& sequence : w.sequences) {
    sequence.q = random_values(rng, q_width(w) * static_cast<std::size_t>(w.queries_per_seq), w.dtype, sigma);
  }
  compute_expected(w);
  w.comment = describe_workload(w, seed, index, limits);
  return w;
}

}  // namespace chunktree::harness
