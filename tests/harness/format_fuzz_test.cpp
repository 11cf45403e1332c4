// Mutation fuzzing of both test formats (docs/FORMATS.md, "Fuzzing the readers"): byte flips and
// insertions, truncations, deleted, duplicated and swapped lines, words replaced by extreme
// values. Every mutant must end in a format error that names the file and a line in printable
// text, or in a check that passes or fails; never in a crash, a hang or another exception.
// CHUNKTREE_FUZZ_ITERATIONS (mutants per base file) and CHUNKTREE_FUZZ_SEED run it longer or
// elsewhere.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/numeric.hpp"
#include "chunktree/types.hpp"
#include "harness/check.hpp"
#include "harness/random.hpp"
#include "harness/seed_format.hpp"
#include "harness/seq_first_format.hpp"
#include "harness/tree_format.hpp"
#include "support/test_directory.hpp"

namespace chunktree::harness {
namespace {

namespace fs = std::filesystem;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text == nullptr || *text == '\0' ? fallback : std::strtoull(text, nullptr, 10);
}

// Words that readers get wrong: signs, the edges of fp32 and int64, special values, keywords
// out of place, bytes that are not text.
const std::vector<std::string>& extreme_words() {
  static const std::vector<std::string> words{
      "1e999", "-1e999", "1e-999", "3.4028236e38", "1e-46", "-0", "0", "nan", "-nan", "inf", "-inf", "Infinity",
      "nan(1)", "+-1", "--1", "+", "-", ".", "1e", "1e+", "0x1p3", "1,5", "0.1", "1.5", "-1", "1", "2", "3", "16", "64",
      "65", "128", "256", "257", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
      "9223372036854775808", "-9223372036854775809", "99999999999999999999", std::string(300, '9'), "bf16", "f16",
      "f32", "node", "nodes", "sequence", "sequences", "q_heads", "scale", "chunktree-tree", "#", std::string("\0", 1),
      "\xff\xfe", "\x1b[2J", "\r", "\t"};
  return words;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

std::size_t pick(Random& rng, std::size_t size) {
  return static_cast<std::size_t>(rng.integer(0, static_cast<std::int64_t>(size) - 1));
}

// The [begin, end) byte ranges of the words of a line.
std::vector<std::pair<std::size_t, std::size_t>> word_ranges(const std::string& line) {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) ranges.emplace_back(start, i);
  }
  return ranges;
}

// Applies one random mutation to `text` and says which.
std::string mutate(std::string& text, Random& rng) {
  if (text.empty()) {
    text = extreme_words()[pick(rng, extreme_words().size())];
    return "filled an empty file";
  }
  std::vector<std::string> lines = split_lines(text);
  const std::size_t line = pick(rng, lines.size());
  const std::string where = " (line " + std::to_string(line + 1) + ")";
  switch (rng.integer(0, 8)) {
    case 0: {
      const std::size_t at = pick(rng, text.size());
      text[at] = static_cast<char>(rng.integer(0, 255));
      return "byte " + std::to_string(at) + " set to " + std::to_string(static_cast<unsigned char>(text[at]));
    }
    case 1: {
      const std::size_t at = pick(rng, text.size() + 1);
      text.insert(at, 1, static_cast<char>(rng.integer(0, 255)));
      return "a byte inserted at " + std::to_string(at);
    }
    case 2: {
      const std::size_t at = pick(rng, text.size());
      text.resize(at);
      return "truncated to " + std::to_string(at) + " bytes";
    }
    case 3:
      lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(line));
      text = join_lines(lines);
      return "line deleted" + where;
    case 4:
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(line), lines[line]);
      text = join_lines(lines);
      return "line duplicated" + where;
    case 5: {
      const std::size_t other = pick(rng, lines.size());
      std::swap(lines[line], lines[other]);
      text = join_lines(lines);
      return "lines " + std::to_string(line + 1) + " and " + std::to_string(other + 1) + " swapped";
    }
    default: {
      const auto ranges = word_ranges(lines[line]);
      if (ranges.empty()) {
        lines[line] = "# a comment where a blank line was";
        text = join_lines(lines);
        return "comment" + where;
      }
      const auto [begin, end] = ranges[pick(rng, ranges.size())];
      const std::string word = rng.chance(0.1) ? std::string() : extreme_words()[pick(rng, extreme_words().size())];
      lines[line].replace(begin, end - begin, word);
      text = join_lines(lines);
      return "a word replaced by '" + word + "'" + where;
    }
  }
}

// Small workloads built in code: two nodes under a root child, sequences at leaves and inside,
// one query token in `dtype` with a scale, or several in f32 with GQA.
TreeWorkload base_workload(int queries_per_seq) {
  Random rng(queries_per_seq);
  TreeWorkload w;
  w.q_heads = queries_per_seq == 1 ? 2 : 4;
  w.kv_heads = queries_per_seq == 1 ? 1 : 2;
  w.head_dim = 64;
  w.chunk_size = 16;
  w.dtype = queries_per_seq == 1 ? DType::bf16 : DType::f32;
  if (queries_per_seq == 1) w.scale = 0.125f;
  w.queries_per_seq = queries_per_seq;
  w.comment = "a base file of the format fuzzer";
  const auto values = [&](std::int64_t count) {
    std::vector<float> result;
    for (std::int64_t i = 0; i < count; ++i) result.push_back(round_to(w.dtype, static_cast<float>(rng.normal())));
    return result;
  };
  const std::int64_t width = w.kv_heads * w.head_dim;
  for (const auto [parent, length] : {std::pair{-1, 3}, std::pair{0, 2}, std::pair{0, 1}}) {
    w.nodes.push_back(TreeNode{static_cast<std::int64_t>(w.nodes.size()) * 7, parent, length, values(length * width),
                               values(length * width)});
  }
  for (const std::int32_t node : {1, 0, 2, 1}) {
    w.sequences.push_back(TreeSequence{node, values(queries_per_seq * w.q_heads * w.head_dim), {}, {}, 0});
  }
  compute_expected(w);
  return w;
}

std::string read_text(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream text;
  text << stream.rdbuf();
  return text.str();
}

bool printable(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

struct Tally {
  std::uint64_t format_errors = 0;
  std::uint64_t passed = 0;
  std::uint64_t failed = 0;
  double slowest_seconds = 0.0;
};

// The mutants go to one file, mutant.txt, left in place (with the test's directory) when a test
// fails or crashes, so that `chunktree check` can run the one that broke it.
class FormatFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_directory("chunktree_fuzz");
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Checks mutants of `base` as `chunktree check` does, stopping at the first one that breaks a rule.
  Tally fuzz(const std::string& name, const std::string& base) {
    const std::uint64_t seed = env_number("CHUNKTREE_FUZZ_SEED", 17);
    const std::uint64_t iterations = env_number("CHUNKTREE_FUZZ_ITERATIONS", kDefaultIterations);
    const std::string mutant = path("mutant.txt");
    CheckOptions options;
    options.threads = 1;
    Tally tally;
    std::uint64_t i = 0;
    for (; i < iterations && !HasFailure(); ++i) {
      Random rng(seed_from(name, seed * 1'000'003 + i));
      std::string text = base;
      std::string mutations;
      for (std::int64_t m = rng.integer(1, 3); m > 0; --m) {
        mutations += (mutations.empty() ? "" : "; ") + mutate(text, rng);
      }
      std::ofstream(mutant, std::ios::binary) << text;
      const std::string label = name + " mutant " + std::to_string(i) + " (CHUNKTREE_FUZZ_SEED=" + std::to_string(seed) +
                                "): " + mutations + "; the file: " + mutant;
      const auto start = std::chrono::steady_clock::now();
      try {
        const CheckResult result =
            is_tree_file(mutant) ? check_tree_file(mutant, options) : check_seed_file(mutant, options);
        (result.passed ? tally.passed : tally.failed) += 1;
        if (text == base) EXPECT_TRUE(result.passed) << label;
      } catch (const Error& error) {
        tally.format_errors += 1;
        expect_names_file_and_line(error, mutant, text, label);
      } catch (const std::exception& error) {
        ADD_FAILURE() << label << ": an exception other than chunktree::Error: " << error.what();
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      tally.slowest_seconds = std::max(tally.slowest_seconds, seconds);
      EXPECT_LT(seconds, 10.0) << label;
    }
    std::printf("%s: %llu mutants: %llu format errors, %llu passed, %llu failed; slowest %.3f s\n", name.c_str(),
                static_cast<unsigned long long>(i), static_cast<unsigned long long>(tally.format_errors),
                static_cast<unsigned long long>(tally.passed), static_cast<unsigned long long>(tally.failed),
                tally.slowest_seconds);
    return tally;
  }

  static void expect_names_file_and_line(const Error& error, const std::string& file, const std::string& text,
                                         const std::string& label) {
    const std::string message = error.what();
    EXPECT_EQ(error.code(), ErrorCode::format) << label << ": " << message;
    EXPECT_TRUE(printable(message)) << label << ": " << message;
    const std::string prefix = file + ":";
    ASSERT_EQ(message.rfind(prefix, 0), 0u) << label << ": " << message;
    const std::size_t line = std::strtoull(message.c_str() + prefix.size(), nullptr, 10);
    // A file that ends early is blamed on the line after its last one.
    const std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
                              (text.empty() || text.back() == '\n' ? 0 : 1);
    EXPECT_TRUE(line >= 1 && line <= lines + 1) << label << ": " << message << " (the file has " << lines << " lines)";
  }

  static constexpr std::uint64_t kDefaultIterations = 1000;
  fs::path dir_;
};

TEST_F(FormatFuzz, SeedFileMutants) {
  write_seed_file(path("base.txt"), generate_seed_file(SeedCase{"randn", SeedShape{1, 1, 1}}));
  const Tally tally = fuzz("seed", read_text(path("base.txt")));
  if (!HasFailure() && env_number("CHUNKTREE_FUZZ_ITERATIONS", 1) > 0) EXPECT_GT(tally.format_errors, 0u);
}

// Two chunks, the last one cut at 40 tokens, the first one's state in the file.
TEST_F(FormatFuzz, SeqFirstFileMutants) {
  write_seq_first_file(path("base.txt"), generate_seq_first_file(SeqFirstCase{"randn", SeedShape{1, 1, 2}, 1, 104}));
  const Tally tally = fuzz("seq_first", read_text(path("base.txt")));
  if (!HasFailure() && env_number("CHUNKTREE_FUZZ_ITERATIONS", 1) > 0) EXPECT_GT(tally.format_errors, 0u);
}

TEST_F(FormatFuzz, TreeFileMutants) {
  for (const int queries_per_seq : {1, 2}) {
    write_tree_file(path("base.txt"), base_workload(queries_per_seq));
    const std::string base = read_text(path("base.txt"));
    const CheckResult unchanged = check_tree_file(path("base.txt"), CheckOptions{});
    ASSERT_TRUE(unchanged.passed) << unchanged.details;
    const Tally tally = fuzz("tree" + std::to_string(queries_per_seq), base);
    if (!HasFailure() && env_number("CHUNKTREE_FUZZ_ITERATIONS", 1) > 0) {
      EXPECT_GT(tally.format_errors, 0u);
      EXPECT_GT(tally.passed + tally.failed, 0u);
    }
  }
}

}  // namespace
}  // namespace chunktree::harness
