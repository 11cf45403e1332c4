// The tree test format: generated files, the documented example, dumps, failing checks and
// every kind of malformed input.
#include "harness/tree_format.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/check.hpp"
#include "harness/random.hpp"
#include "harness/tree_levels.hpp"
#include "support/address_space.hpp"
#include "support/expect_error.hpp"
#include "options.hpp"
#include "support/test_directory.hpp"

namespace chunktree::harness {
namespace {

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

std::string read_text(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << stream.rdbuf();
  return buffer.str();
}

// The example file of docs/FORMATS.md, "Tree format", so that the documentation stays true.
std::string documented_example() {
  const fs::path doc = fs::path(__FILE__).parent_path().parent_path().parent_path() / "docs" / "FORMATS.md";
  const std::string text = read_text(doc);
  const std::size_t marker = text.find("<!-- tree-format-example");
  if (marker == std::string::npos) return "";
  const std::size_t begin = text.find("```\n", marker) + 4;
  return text.substr(begin, text.find("\n```", begin) + 1 - begin);
}

Lines split_lines(const std::string& text) {
  Lines lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::string join_lines(const Lines& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// Each test gets its own fresh directory.
class TreeFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_directory("chunktree_tree_test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  std::vector<std::string> generate(const std::vector<std::string>& options) const {
    std::vector<std::string_view> args(options.begin(), options.end());
    const std::string dir = dir_.string();
    args.push_back(dir);
    EXPECT_EQ(tools::gentrees_command(args), 0);
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
  }

  fs::path dir_;
};

CheckOptions strict_options() {
  CheckOptions options;
  options.strict = true;
  return options;
}

void expect_passes(const std::string& file, bool strict) {
  CheckOptions options;
  options.strict = strict;
  options.verbose = true;
  const CheckResult result = check_tree_file(file, options);
  EXPECT_TRUE(result.passed) << file << "\n" << result.details;
  EXPECT_NE(result.details.find("default plan"), std::string::npos) << result.details;
  EXPECT_EQ(result.fails, 0) << file;
  EXPECT_GT(result.total, 0) << file;
  EXPECT_LT(result.max_diff, 1e-3) << file;
}

// ---- a small workload built in code ----

void add_node(TreeWorkload& w, Random& rng, std::int64_t id, std::int32_t parent, std::int64_t length) {
  TreeNode node;
  node.id = id;
  node.parent = parent;
  node.length = length;
  for (std::int64_t i = 0; i < length * w.kv_heads * w.head_dim; ++i) {
    node.k.push_back(round_to(w.dtype, static_cast<float>(rng.normal())));
    node.v.push_back(round_to(w.dtype, static_cast<float>(rng.normal())));
  }
  w.nodes.push_back(std::move(node));
}

void add_sequence(TreeWorkload& w, Random& rng, std::int32_t node) {
  TreeSequence sequence;
  sequence.node = node;
  for (int i = 0; i < w.queries_per_seq * w.q_heads * w.head_dim; ++i)
    sequence.q.push_back(round_to(w.dtype, static_cast<float>(rng.normal())));
  w.sequences.push_back(std::move(sequence));
}

// Node 0 (20 tokens) → node 1 (13) → node 2 (40), and node 3 (5) under node 0; chunk size 16,
// so nodes end inside chunks. Sequences end at the nodes in `ends`, in that order.
TreeWorkload chain_workload(const std::vector<std::int32_t>& ends, int queries_per_seq = 1) {
  Random rng(42);
  TreeWorkload w;
  w.queries_per_seq = queries_per_seq;
  w.q_heads = 8;
  w.kv_heads = 2;
  w.head_dim = 64;
  w.chunk_size = 16;
  w.dtype = DType::bf16;
  add_node(w, rng, 0, -1, 20);
  add_node(w, rng, 1, 0, 13);
  add_node(w, rng, 2, 1, 40);
  add_node(w, rng, 3, 0, 5);
  for (std::int32_t node : ends) add_sequence(w, rng, node);
  compute_expected(w);
  return w;
}

// ---- generated files ----

TEST_F(TreeFormatTest, GeneratedFilesPassStrictAndDefault) {
  const std::vector<std::string> files = generate({"--count", "6", "--seed", "5"});
  ASSERT_EQ(files.size(), 6u);
  for (const std::string& file : files) {
    EXPECT_TRUE(is_tree_file(file)) << file;
    expect_passes(file, true);
    expect_passes(file, false);
  }
  EXPECT_TRUE(fs::exists(path("tree_5_0.txt")));
  EXPECT_TRUE(fs::exists(path("tree_5_5.txt")));
}

TEST_F(TreeFormatTest, LargeWorkloadPassesStrict) {
  const std::vector<std::string> files = generate({"--count", "1", "--seed", "3", "--sequences", "300"});
  ASSERT_EQ(files.size(), 1u);
  EXPECT_GE(read_tree_file(files[0]).sequences.size(), 300u);
  expect_passes(files[0], true);
}

TEST(TreeFormatGenerate, CoversShapesLengthsAndSequenceKinds) {
  std::set<int> head_dims, chunk_sizes, groups;
  std::set<DType> dtypes;
  int single_tokens = 0, chunk_multiples = 0, other_lengths = 0;
  for (int index = 0; index < 12; ++index) {
    const TreeWorkload w = generate_tree_workload(9, index);
    head_dims.insert(w.head_dim);
    chunk_sizes.insert(w.chunk_size);
    groups.insert(w.q_heads / w.kv_heads);
    dtypes.insert(w.dtype);
    std::vector<int> readers(w.nodes.size(), 0);
    std::vector<bool> interior(w.nodes.size(), false);
    for (const TreeNode& node : w.nodes) {
      single_tokens += node.length == 1;
      chunk_multiples += node.length % w.chunk_size == 0;
      other_lengths += node.length > 1 && node.length % w.chunk_size != 0;
      if (node.parent >= 0) interior[static_cast<std::size_t>(node.parent)] = true;
      for (float value : node.k) ASSERT_NE(value, 0.0f);
    }
    std::vector<int> ending(w.nodes.size(), 0);
    bool ends_inside = false;
    for (const TreeSequence& sequence : w.sequences) {
      ending[static_cast<std::size_t>(sequence.node)] += 1;
      ends_inside = ends_inside || interior[static_cast<std::size_t>(sequence.node)];
    }
    const bool has_interior = std::find(interior.begin(), interior.end(), true) != interior.end();
    EXPECT_EQ(ends_inside, has_interior) << "file " << index;
    EXPECT_GE(*std::max_element(ending.begin(), ending.end()), 2) << "file " << index;
  }
  EXPECT_EQ(head_dims, (std::set<int>{64, 128, 256}));
  EXPECT_EQ(chunk_sizes, (std::set<int>{16, 32, 64, 128}));
  EXPECT_EQ(groups, (std::set<int>{1, 2, 4, 8}));
  EXPECT_EQ(dtypes, (std::set<DType>{DType::bf16, DType::f16, DType::f32}));
  EXPECT_GT(single_tokens, 0);
  EXPECT_GT(chunk_multiples, 0);
  EXPECT_GT(other_lengths, single_tokens + chunk_multiples);
}

TEST_F(TreeFormatTest, GenerationIsDeterministic) {
  write_tree_file(path("a.txt"), generate_tree_workload(17, 4));
  write_tree_file(path("b.txt"), generate_tree_workload(17, 4));
  write_tree_file(path("c.txt"), generate_tree_workload(18, 4));
  EXPECT_EQ(read_text(path("a.txt")), read_text(path("b.txt")));
  EXPECT_NE(read_text(path("a.txt")), read_text(path("c.txt")));
}

// ---- the documented example and hand-made workloads ----

TEST_F(TreeFormatTest, DocumentedExampleParsesAndPasses) {
  const std::string example = documented_example();
  ASSERT_FALSE(example.empty()) << "docs/FORMATS.md has no tree-format example block";
  const std::string file = write("example.txt", example);
  EXPECT_TRUE(is_tree_file(file));
  const TreeWorkload w = read_tree_file(file);
  EXPECT_EQ(w.q_heads, 2);
  EXPECT_EQ(w.kv_heads, 1);
  EXPECT_EQ(w.head_dim, 64);
  EXPECT_EQ(w.dtype, DType::bf16);
  ASSERT_EQ(w.nodes.size(), 2u);
  ASSERT_EQ(w.sequences.size(), 2u);
  EXPECT_EQ(w.sequences[0].node, 1);
  EXPECT_EQ(w.sequences[1].node, 0);
  expect_passes(file, true);
  expect_passes(file, false);
}

TEST_F(TreeFormatTest, CrlfLineEndingsAndCommentsAreAccepted) {
  std::string text;
  for (const std::string& line : split_lines(documented_example())) text += line + "\r\n# a comment\r\n\r\n";
  expect_passes(write("crlf.txt", text), true);
}

TEST_F(TreeFormatTest, SequencesEndingAtInteriorNodesAndIdenticalSequencesPass) {
  // Every order makes the cache split nodes, claim chunk tails or share whole sequences.
  const std::vector<std::vector<std::int32_t>> orders{
      {2, 0, 1, 2, 3, 0}, {0, 1, 2, 3}, {0, 0, 0}, {3, 2, 1, 0, 3}, {1, 1, 2, 2}};
  for (const auto& ends : orders) {
    const std::string file = path("chain.txt");
    write_tree_file(file, chain_workload(ends));
    const CheckResult result = check_tree_file(file, strict_options());
    EXPECT_TRUE(result.passed) << result.details;
    // Sharing checks, then three runs (two plans, the levels API) × sequences × (O norm + one LSE per head).
    const auto sequences = static_cast<std::int64_t>(ends.size());
    EXPECT_EQ(result.total, sequences + 3 * sequences * (1 + 8));
  }
}

TEST_F(TreeFormatTest, SeveralQueryTokensPerSequencePass) {
  // Up to 5 query tokens: node 3 has 5 tokens, so the causal part reaches into node 0 for the
  // sequences that end there, and into shared nodes for identical sequences.
  for (int queries : {2, 5, 20}) {
    const std::vector<std::int32_t> ends = queries <= 5 ? std::vector<std::int32_t>{2, 0, 1, 2, 3, 0} : std::vector<std::int32_t>{2, 1, 2, 0};
    TreeWorkload w = chain_workload(ends, queries);
    const std::string file = path("queries.txt");
    write_tree_file(file, w);
    const TreeWorkload read = read_tree_file(file);
    EXPECT_EQ(read.queries_per_seq, queries);
    EXPECT_EQ(read.sequences[0].o.size(), static_cast<std::size_t>(queries * 8 * 64));
    const CheckResult result = check_tree_file(file, strict_options());
    EXPECT_TRUE(result.passed) << "queries " << queries << "\n" << result.details;
    expect_passes(file, false);
  }
  std::set<int> chunk_sizes;
  for (int index : {3, 6, 9, 12}) {  // generated files with several query tokens, one per chunk size
    const TreeWorkload w = generate_tree_workload(4, index);
    EXPECT_GT(w.queries_per_seq, 1) << "file " << index;
    chunk_sizes.insert(w.chunk_size);
    write_tree_file(path("generated.txt"), w);
    expect_passes(path("generated.txt"), true);
  }
  EXPECT_EQ(chunk_sizes, (std::set<int>{16, 32, 64, 128}));
}

TEST_F(TreeFormatTest, DetailsOnlyWhenVerboseAndAnyThreadCount) {
  write_tree_file(path("t.txt"), chain_workload({2, 0, 3}));
  CheckOptions one_thread = strict_options();
  one_thread.threads = 1;
  const CheckResult quiet = check_tree_file(path("t.txt"), one_thread);
  EXPECT_TRUE(quiet.passed);
  EXPECT_TRUE(quiet.details.empty()) << quiet.details;
}

TEST_F(TreeFormatTest, NodesThatNoSequenceReadsAreAllowed) {
  write_tree_file(path("unused.txt"), chain_workload({1}));
  expect_passes(path("unused.txt"), true);
}

TEST_F(TreeFormatTest, NodeIdsNeedNotBeContiguous) {
  TreeWorkload w = chain_workload({2, 3});
  const std::int64_t ids[] = {70, 5, 1000, 6};
  for (std::size_t i = 0; i < w.nodes.size(); ++i) w.nodes[i].id = ids[i];
  write_tree_file(path("ids.txt"), w);
  EXPECT_EQ(read_tree_file(path("ids.txt")).nodes[2].id, 1000);
  expect_passes(path("ids.txt"), true);
}

// A chain of 4,000 1-token nodes with a sequence ending at every node, and 20,000 more at its
// end. The levels layout has one segment per node and one own part per sequence; building it
// once walked every sequence's whole path (Σ depth entries, here 88 million: seconds and a
// gigabyte). Bounded in CPU time, which other processes on the machine do not inflate.
TEST(TreeLevelsLayout, DeepChainIsLaidOutInLinearTime) {
  constexpr int kNodes = 4'000;
  constexpr int kMoreAtTheEnd = 20'000;
  TreeWorkload w;
  w.q_heads = 1;
  w.kv_heads = 1;
  w.head_dim = 64;
  w.dtype = DType::bf16;
  for (int n = 0; n < kNodes; ++n) {
    w.nodes.push_back(TreeNode{n, n - 1, 1, std::vector<float>(64, 0.5f), std::vector<float>(64, -0.5f)});
    w.sequences.push_back(TreeSequence{n, {}, {}, {}, 0});  // the layout reads no Q
  }
  for (int s = 0; s < kMoreAtTheEnd; ++s) w.sequences.push_back(TreeSequence{kNodes - 1, {}, {}, {}, 0});
  const std::clock_t start = std::clock();
  const TreeLevels levels(w);
  const double cpu_seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  EXPECT_EQ(levels.shared_segments(), static_cast<std::size_t>(kNodes - 1));
  EXPECT_EQ(levels.segments(), static_cast<std::size_t>(kNodes - 1 + kNodes + kMoreAtTheEnd));
  EXPECT_LT(cpu_seconds, 1.0);
}

// ---- host memory ----

// A file of a few MB whose check needs far more memory than its text (here ~0.6 GiB: every
// one-token node of 8 kv heads of 256 takes two chunks of 128 tokens in the cache, and half of them
// a page pool in the levels run) is refused before anything is allocated, naming what it needs and
// what is available, rather than running out of memory halfway (or being killed for it).
TEST_F(TreeFormatTest, AFileWhoseCheckNeedsMoreMemoryThanThereIsIsRefusedUpFront) {
  if (testing::kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no limit can be set";
  Random rng(9);
  TreeWorkload w;
  w.q_heads = 8;
  w.kv_heads = 8;
  w.head_dim = 256;
  w.chunk_size = 128;
  w.dtype = DType::f32;
  for (int n = 0; n < 100; ++n) {
    add_node(w, rng, n, n - 1, 1);
    add_sequence(w, rng, n);
  }
  compute_expected(w);
  const std::string file = path("wide.txt");
  write_tree_file(file, w);
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: this one's free heap would not count
  const auto remove_own = [&] {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  };
  EXPECT_EXIT(testing::exit_with_little_memory(std::size_t{256} << 20, ErrorCode::unsupported, [&] { check_tree_file(file, CheckOptions{}); },
                                               remove_own),
              ::testing::ExitedWithCode(0),
              "wide.txt: checking this file on the cpu backend needs up to 0.6[0-9]* GiB of host memory \\(cache 0.391, .*available");
}

// ---- dumps and failing checks ----

TEST_F(TreeFormatTest, DumpRoundTripPasses) {
  const std::string file = path("dumped.txt");
  write_tree_file(file, generate_tree_workload(2, 7));
  CheckOptions options = strict_options();
  options.dump_path = path("dump.txt");
  ASSERT_TRUE(check_tree_file(file, options).passed);
  const std::string dump = options.dump_path;
  ASSERT_TRUE(fs::exists(dump));
  const CheckResult again = check_tree_file(dump, strict_options());
  EXPECT_TRUE(again.passed) << again.details;
  EXPECT_LT(again.max_diff, 1e-4);
  const TreeWorkload original = read_tree_file(file);
  const TreeWorkload dumped = read_tree_file(dump);
  ASSERT_EQ(dumped.nodes.size(), original.nodes.size());
  EXPECT_EQ(dumped.nodes.back().k, original.nodes.back().k);
  ASSERT_EQ(dumped.sequences.size(), original.sequences.size());
  EXPECT_EQ(dumped.sequences.front().q, original.sequences.front().q);
}

TEST_F(TreeFormatTest, PerturbedExpectedValuesFail) {
  TreeWorkload w = chain_workload({2, 0});
  w.sequences[1].o[5] += 0.5f;
  write_tree_file(path("o.txt"), w);
  const CheckResult result = check_tree_file(path("o.txt"), CheckOptions{});
  EXPECT_FALSE(result.passed);
  EXPECT_EQ(result.fails, 3);  // the element, under each of the two plans and the levels API
  EXPECT_NEAR(result.max_diff, 0.5, 1e-3);
  EXPECT_FALSE(check_tree_file(path("o.txt"), strict_options()).passed);

  // A small LSE error passes the default rule but not --strict.
  w = chain_workload({2, 0});
  w.sequences[0].lse[3] += 0.01f;
  write_tree_file(path("lse.txt"), w);
  EXPECT_TRUE(check_tree_file(path("lse.txt"), CheckOptions{}).passed);
  CheckOptions verbose = strict_options();
  verbose.verbose = true;
  const CheckResult strict = check_tree_file(path("lse.txt"), verbose);
  EXPECT_FALSE(strict.passed);
  EXPECT_EQ(strict.fails, 3);
  EXPECT_NE(strict.details.find("FAILED"), std::string::npos) << strict.details;
}

TEST_F(TreeFormatTest, NonFiniteExpectedValuesFail) {
  TreeWorkload w = chain_workload({1});
  w.sequences[0].o[0] = NAN;
  write_tree_file(path("nan.txt"), w);
  for (const bool strict : {false, true}) {
    CheckOptions options;
    options.strict = strict;
    const CheckResult result = check_tree_file(path("nan.txt"), options);
    EXPECT_FALSE(result.passed);
    EXPECT_TRUE(std::isinf(result.max_diff));
  }
}

TEST_F(TreeFormatTest, CudaBackendWithoutAGpuIsAClearError) {
  if (!cuda_devices().empty()) GTEST_SKIP() << "a GPU is visible";
  write_tree_file(path("t.txt"), chain_workload({0}));
  CheckOptions options;
  options.backend = Backend::cuda;
  EXPECT_THROW(check_tree_file(path("t.txt"), options), Error);
  EXPECT_THROW(tools::select_backend("cuda"), Error);
  EXPECT_EQ(tools::select_backend("auto"), Backend::cpu);
}

// The first word of the first line that is neither blank nor a comment: a tree file with one of
// those first goes to the tree reader, which says where the format line belongs.
TEST_F(TreeFormatTest, IsTreeFileLooksAtTheFirstWord) {
  EXPECT_TRUE(is_tree_file(write("a.txt", "chunktree-tree 1\n")));
  EXPECT_TRUE(is_tree_file(write("b.txt", "chunktree-tree 7\n")));  // then refused by the reader
  EXPECT_FALSE(is_tree_file(write("c.txt", "8 64 128 1 1\n")));
  EXPECT_FALSE(is_tree_file(write("d.txt", "")));
  EXPECT_FALSE(is_tree_file(path("missing.txt")));
  EXPECT_FALSE(is_tree_file(write("e.txt", "# a note\n\n8 64 128 1 1\n")));
  for (const char* first : {"# a note\n", "\n", "  \t\n"}) {
    const std::string file = write("f.txt", std::string(first) + "chunktree-tree 1\n");
    EXPECT_TRUE(is_tree_file(file)) << first;
    testing::expect_error([&] { read_tree_file(file); }, ErrorCode::format,
                          ":1: the first line must be the format line 'chunktree-tree 1'; blank and comment lines may only follow it");
  }
}

// ---- malformed files ----

// One way to break the documented example: `edit` changes its lines and returns the 1-based
// line the error must name; the message must also contain `message`.
struct Malformation {
  const char* name;
  std::function<std::size_t(Lines&)> edit;
  const char* message;
};

// Index of the first line that starts with `prefix`.
std::size_t find_line(const Lines& lines, const std::string& prefix) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(prefix, 0) == 0) return i;
  }
  ADD_FAILURE() << "no line starts with " << prefix;
  return 0;
}

// Replaces the line starting with `prefix`; returns its 1-based number.
std::function<std::size_t(Lines&)> replace(const std::string& prefix, const std::string& line) {
  return [=](Lines& lines) {
    const std::size_t i = find_line(lines, prefix);
    lines[i] = line;
    return i + 1;
  };
}

// Replaces line `offset` after the one starting with `prefix`, through `change`.
std::function<std::size_t(Lines&)> change_after(const std::string& prefix, std::size_t offset,
                                                std::function<void(std::string&)> change) {
  return [=](Lines& lines) {
    const std::size_t i = find_line(lines, prefix) + offset;
    change(lines[i]);
    return i + 1;
  };
}

// Inserts `line` after the one starting with `prefix`; returns the new line's number.
std::function<std::size_t(Lines&)> insert_after(const std::string& prefix, const std::string& line) {
  return [=](Lines& lines) {
    const std::size_t i = find_line(lines, prefix) + 1;
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(i), line);
    return i + 1;
  };
}

void drop_last_value(std::string& line) { line.erase(line.rfind(' ')); }
void replace_first_value(std::string& line, const std::string& value) { line = value + line.substr(line.find(' ')); }

std::vector<Malformation> malformations() {
  return {
      {"wrong format line", replace("chunktree-tree", "chunktree-trie 1"), "not a tree-format file"},
      {"unsupported version", replace("chunktree-tree", "chunktree-tree 2"), "version 2"},
      {"empty file",
       [](Lines& lines) {
         lines.clear();
         return std::size_t{1};
       },
       "file ends"},
      {"q_heads not a multiple",
       [](Lines& lines) {
         lines[find_line(lines, "kv_heads")] = "kv_heads 4";
         return find_line(lines, "nodes") + 1;  // found out on the nodes line
       },
       "q_heads 2 (line 4) is not a multiple of kv_heads 4 (line 5)"},
      {"head_dim", replace("head_dim", "head_dim 100"), "head_dim must be one of 64, 128, 256"},
      {"chunk_size", replace("chunk_size", "chunk_size 8"), "chunk_size must be one of"},
      {"dtype", replace("dtype", "dtype f8"), "dtype must be bf16, f16 or f32"},
      {"scale not a number", replace("scale", "scale abc"), "scale must be a number"},
      {"negative scale", replace("scale", "scale -1"), "positive"},
      {"scale past the kernels' range", replace("scale", "scale 3e38"), "at most 2.35e+38"},
      {"queries_per_seq zero", replace("queries_per_seq", "queries_per_seq 0"), "queries_per_seq must be from 1"},
      {"queries_per_seq too large", replace("queries_per_seq", "queries_per_seq 65"), "queries_per_seq must be from 1"},
      {"unknown field", insert_after("kv_heads", "layers 1"), "unknown header field 'layers'"},
      {"duplicate field", insert_after("dtype", "head_dim 64"), "appears twice"},
      {"header word count", replace("q_heads", "q_heads 2 3"), "got 3 words"},
      {"q_heads zero", replace("q_heads", "q_heads 0"), "q_heads must be from 1"},
      {"nodes zero", replace("nodes", "nodes 0"), "nodes must be from 1"},
      {"node line too short", replace("node 0", "node 0 -1"), "'node ID PARENT LENGTH'"},
      {"unknown parent", replace("node 1", "node 1 7 1"), "parent 7 of node 1 is not the id of an earlier node"},
      {"own parent", replace("node 1", "node 1 1 1"), "not the id of an earlier node"},
      {"duplicate id", replace("node 1", "node 0 0 1"), "node id 0 is used twice"},
      {"zero length", replace("node 1", "node 1 0 0"), "the node length must be from 1"},
      {"fractional length", replace("node 1", "node 1 0 1.5"), "must be an integer"},
      {"K row too short", change_after("node 0", 1, drop_last_value),
       "K of node 0 token 0: expected 64 values but the line has 63"},
      {"K row too long", change_after("node 0", 2, [](std::string& l) { l += " 1"; }), "but the line has more"},
      {"V not a number", change_after("node 1", 2, [](std::string& l) { replace_first_value(l, "abc"); }),
       "V of node 1 token 0: value 1 ('abc') is not a number"},
      {"not representable", change_after("node 0", 1, [](std::string& l) { replace_first_value(l, "0.1"); }),
       "not representable in bf16"},
      {"NaN input", change_after("node 0", 3, [](std::string& l) { replace_first_value(l, "nan"); }), "must be finite"},
      {"Q too short", change_after("sequence 1", 1, drop_last_value), "Q of sequence 0: expected 128 values"},
      {"O too short", change_after("sequence 1", 2, drop_last_value), "O of sequence 0: expected 128 values"},
      {"LSE too long", change_after("sequence 0", 3, [](std::string& l) { l += " 1"; }), "LSE of sequence 1"},
      {"unknown sequence node", replace("sequence 0", "sequence 9"), "ends at node 9, which does not exist"},
      {"sequence line", replace("sequence 1", "sequence"), "'sequence NODE'"},
      {"sequences zero", replace("sequences", "sequences 0"), "sequences must be from 1"},
      {"too many nodes counted",
       [](Lines& lines) {
         lines[find_line(lines, "nodes")] = "nodes 3";
         return find_line(lines, "sequences") + 1;
       },
       "expected node record 3 of 3"},
      {"content after the end",
       [](Lines& lines) {
         lines.push_back("sequence 0");
         return lines.size();
       },
       "unexpected content after the last of the 2 sequences"},
      {"truncated in a node",
       [](Lines& lines) {
         lines.resize(find_line(lines, "node 1") + 1);
         return lines.size() + 1;
       },
       "the file ends where K of node 1 token 0 was expected"},
      {"truncated before a sequence",
       [](Lines& lines) {
         lines.resize(find_line(lines, "sequence 0"));
         return lines.size() + 1;
       },
       "the file ends where sequence record 2 of 2"},
      {"missing field",
       [](Lines& lines) {
         lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(find_line(lines, "dtype")));
         return find_line(lines, "nodes") + 1;
       },
       "the header has no dtype field"},
  };
}

TEST_F(TreeFormatTest, MalformedFilesNameFileAndLine) {
  const Lines example = split_lines(documented_example());
  ASSERT_FALSE(example.empty());
  for (const Malformation& malformation : malformations()) {
    SCOPED_TRACE(malformation.name);
    Lines lines = example;
    const std::size_t line = malformation.edit(lines);
    const std::string file = write("bad.txt", join_lines(lines));
    try {
      check_tree_file(file, CheckOptions{});
      ADD_FAILURE() << "no error";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_EQ(error.code(), ErrorCode::format) << message;
      EXPECT_NE(message.find(file + ":" + std::to_string(line) + ": "), std::string::npos)
          << message << "\nwanted line " << line;
      EXPECT_NE(message.find(malformation.message), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace chunktree::harness
