// The seed project's chunk-first files: generation, the library-backed check, --dump, and
// malformed files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/numeric.hpp"
#include "chunktree/reference.hpp"
#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/seed_format.hpp"

namespace chunktree::harness {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SeedFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::path(::testing::TempDir()) / ("chunktree_seed_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Generates the case into the test's directory and returns the file's path.
  std::string generate(const std::string& pattern, int seqs, int heads, int chunks) const {
    const SeedCase seed_case{pattern, SeedShape{seqs, heads, chunks}};
    const std::string path = (dir_ / seed_file_name(seed_case)).string();
    write_seed_file(path, generate_seed_file(seed_case));
    return path;
  }

  fs::path dir_;
};

CheckOptions options(bool strict) {
  CheckOptions result;
  result.strict = strict;
  return result;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream stream(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream stream(path);
  for (const std::string& line : lines) stream << line << '\n';
}

bool is_bf16(float value) { return round_to(DType::bf16, value) == value; }

// ---- the grids and the generator ----

TEST(SeedGrid, HasTheSeedProjectsSizesAndUniqueNames) {
  const std::vector<SeedCase> quick = seed_grid(false);
  const std::vector<SeedCase> full = seed_grid(true);
  EXPECT_EQ(quick.size(), 36u);
  EXPECT_EQ(full.size(), 1680u);
  std::set<std::string> names;
  for (const SeedCase& seed_case : full) names.insert(seed_file_name(seed_case));
  EXPECT_EQ(names.size(), full.size());
  EXPECT_EQ(seed_file_name(quick.front()), "randn_s8_h1_c1.txt");
  EXPECT_EQ(seed_file_name(SeedCase{"positive", SeedShape{24, 12, 6}}), "positive_s24_h12_c6.txt");
}

TEST(SeedGenerate, InputsAreBf16AndReproducible) {
  const SeedCase seed_case{"positive", SeedShape{3, 2, 2}};
  const SeedFile first = generate_seed_file(seed_case);
  const SeedFile second = generate_seed_file(seed_case);
  EXPECT_EQ(first.q, second.q);
  EXPECT_EQ(first.k, second.k);
  EXPECT_EQ(first.outputs.attns, second.outputs.attns);
  for (float value : first.q) EXPECT_TRUE(is_bf16(value) && value >= 0.0f) << value;
  for (const auto* lines : {&first.k, &first.v}) {
    for (const auto& line : *lines) {
      for (float value : line) ASSERT_TRUE(is_bf16(value) && value >= 0.0f) << value;
    }
  }
  EXPECT_NE(generate_seed_file(SeedCase{"randn", SeedShape{3, 2, 2}}).q, first.q);
  EXPECT_THROW(generate_seed_file(SeedCase{"gaussian", SeedShape{1, 1, 1}}), Error);
}

// The generator's expected values agree with the library's fp64 reference: for one chunk,
// attns / sums is the attention output and max + log(sums) the log-sum-exp.
TEST(SeedGenerate, ExpectedValuesAgreeWithTheFp64Reference) {
  const SeedFile file = generate_seed_file(SeedCase{"large", SeedShape{2, 3, 1}});
  const int heads = file.shape.heads;
  // The reference wants K and V as [tokens, kv_heads, dim]; the file has [heads, tokens, dim].
  std::vector<float> k(file.k[0].size());
  std::vector<float> v(file.v[0].size());
  for (int h = 0; h < heads; ++h) {
    for (int t = 0; t < kSeedChunkSize; ++t) {
      for (int d = 0; d < kSeedHeadDim; ++d) {
        k[(t * heads + h) * kSeedHeadDim + d] = file.k[0][(h * kSeedChunkSize + t) * kSeedHeadDim + d];
        v[(t * heads + h) * kSeedHeadDim + d] = file.v[0][(h * kSeedChunkSize + t) * kSeedHeadDim + d];
      }
    }
  }
  for (int s = 0; s < file.shape.seqs; ++s) {
    std::vector<double> out(static_cast<std::size_t>(heads) * kSeedHeadDim);
    std::vector<double> lse(static_cast<std::size_t>(heads));
    reference::attention(&file.q[static_cast<std::size_t>(s * heads) * kSeedHeadDim], heads, k.data(), v.data(),
                         kSeedChunkSize, heads, kSeedHeadDim, 1.0 / std::sqrt(128.0), out.data(), lse.data());
    for (int h = 0; h < heads; ++h) {
      const std::size_t row = static_cast<std::size_t>(h * file.shape.seqs + s);
      const double sum = file.outputs.sums[0][row];
      EXPECT_NEAR(file.outputs.maxs[0][row] + std::log(sum), lse[h], 1e-5);
      for (int d = 0; d < kSeedHeadDim; ++d) {
        EXPECT_NEAR(file.outputs.attns[0][row * kSeedHeadDim + d] / sum, out[h * kSeedHeadDim + d], 1e-5);
      }
    }
  }
}

// ---- checking through the library ----

TEST_F(SeedFiles, GeneratedCasePassesBothRules) {
  const std::string path = generate("randn", 8, 4, 2);
  const CheckResult loose = check_seed_file(path, options(false));
  EXPECT_TRUE(loose.passed);
  EXPECT_EQ(loose.fails, 0);
  EXPECT_EQ(loose.total, 2 * 4 * 8 * (128 + 2));  // every element of attns, maxs and sums
  EXPECT_LT(loose.max_diff, 1e-3);
  const CheckResult strict = check_seed_file(path, options(true));
  EXPECT_TRUE(strict.passed);
  EXPECT_EQ(strict.total, 2 * 3);  // chunks × arrays
}

TEST_F(SeedFiles, ShapesOffTheGridPassStrict) {
  const SeedShape shapes[] = {{3, 5, 7}, {1, 1, 1}, {1, 3, 2}, {5, 1, 3}};
  for (const SeedShape& shape : shapes) {
    for (const char* pattern : {"randn", "large", "positive"}) {
      const std::string path = generate(pattern, shape.seqs, shape.heads, shape.chunks);
      const CheckResult result = check_seed_file(path, options(true));
      EXPECT_TRUE(result.passed) << path << ": fails " << result.fails << "/" << result.total;
      EXPECT_EQ(result.total, 3 * shape.chunks);
    }
  }
}

TEST_F(SeedFiles, ResultsDoNotDependOnThreads) {
  const SeedFile file = read_seed_file(generate("uniform", 4, 3, 3));
  const SeedOutputs one = library_outputs(file, Backend::cpu, 1);
  const SeedOutputs many = library_outputs(file, Backend::cpu, 4);
  EXPECT_EQ(one.attns, many.attns);
  EXPECT_EQ(one.maxs, many.maxs);
  EXPECT_EQ(one.sums, many.sums);
}

TEST_F(SeedFiles, DumpKeepsTheLayoutAndPassesStrict) {
  const std::string path = generate("small", 3, 2, 2);
  CheckOptions dumping = options(false);
  dumping.dump_path = (dir_ / "dump.txt").string();
  ASSERT_TRUE(check_seed_file(path, dumping).passed);

  const std::string dumped = dumping.dump_path;
  ASSERT_TRUE(fs::exists(dumped));
  const std::vector<std::string> original_lines = read_lines(path);
  const std::vector<std::string> dumped_lines = read_lines(dumped);
  ASSERT_EQ(dumped_lines.size(), original_lines.size());
  EXPECT_EQ(dumped_lines.front(), "3 64 128 2 2");
  const std::size_t input_lines = 1 + 1 + 2 * 2;  // header, Q, K and V
  for (std::size_t i = 0; i < input_lines; ++i) EXPECT_EQ(dumped_lines[i], original_lines[i]) << "line " << i + 1;

  const SeedFile original = read_seed_file(path);
  const SeedFile dump = read_seed_file(dumped);
  const SeedOutputs computed = library_outputs(original);
  EXPECT_EQ(dump.outputs.attns, computed.attns);
  EXPECT_EQ(dump.outputs.maxs, computed.maxs);
  EXPECT_EQ(dump.outputs.sums, computed.sums);
  const CheckResult again = check_seed_file(dumped, options(true));
  EXPECT_TRUE(again.passed);
  EXPECT_EQ(again.max_diff, 0.0);
}

TEST_F(SeedFiles, CorruptedExpectedValueFails) {
  const std::string path = generate("randn", 4, 2, 2);
  SeedFile file = read_seed_file(path);
  file.outputs.attns[1][7] += 1000.0f;
  write_seed_file(path, file);

  const CheckResult loose = check_seed_file(path, options(false));
  EXPECT_FALSE(loose.passed);
  EXPECT_EQ(loose.fails, 1);
  EXPECT_NEAR(loose.max_diff, 1000.0, 1e-3);
  const CheckResult strict = check_seed_file(path, options(true));
  EXPECT_FALSE(strict.passed);
  EXPECT_EQ(strict.fails, 1);  // only attns of chunk 1
}

TEST_F(SeedFiles, SmallRelativeErrorsFailStrictOnly) {
  const std::string path = generate("randn", 4, 2, 1);
  SeedFile file = read_seed_file(path);
  for (float& sum : file.outputs.sums[0]) sum *= 1.01f;  // 1%: inside 3%, outside the 1e-3 norm
  write_seed_file(path, file);
  EXPECT_TRUE(check_seed_file(path, options(false)).passed);
  const CheckResult strict = check_seed_file(path, options(true));
  EXPECT_FALSE(strict.passed);
  EXPECT_EQ(strict.fails, 1);
}

TEST_F(SeedFiles, NonFiniteComputedValuesFail) {
  const std::string path = generate("randn", 2, 1, 1);
  std::vector<std::string> lines = read_lines(path);
  lines[1] = "nan" + lines[1].substr(lines[1].find(' '));  // Q[0, 0, 0]: row 0 computes NaN
  write_lines(path, lines);
  for (bool strict : {false, true}) {
    const CheckResult result = check_seed_file(path, options(strict));
    EXPECT_FALSE(result.passed);
    EXPECT_TRUE(std::isinf(result.max_diff));
  }
}

// ---- malformed files ----

struct Malformation {
  const char* name;
  std::function<void(std::vector<std::string>&)> apply;
  int line;  // the line the error must name
};

TEST_F(SeedFiles, MalformedFilesNameFileAndLine) {
  // randn_s1_h1_c1: header, Q, K, V, attns, maxs, sums: 7 lines.
  const Malformation cases[] = {
      {"truncated line", [](auto& lines) { lines[2].resize(lines[2].size() / 2); }, 3},
      {"non-number", [](auto& lines) { lines[1].replace(0, lines[1].find(' '), "1.5x"); }, 2},
      {"missing line", [](auto& lines) { lines.pop_back(); }, 7},
      {"missing lines", [](auto& lines) { lines.resize(3); }, 4},
      {"chunk size 32", [](auto& lines) { lines[0] = "1 32 128 1 1"; }, 1},
      {"head dim 64", [](auto& lines) { lines[0] = "1 64 64 1 1"; }, 1},
      {"short header", [](auto& lines) { lines[0] = "1 64 128 1"; }, 1},
      {"zero heads", [](auto& lines) { lines[0] = "1 64 128 0 1"; }, 1},
      {"header says 2 rows", [](auto& lines) { lines[0] = "2 64 128 1 1"; }, 2},
      {"extra values", [](auto& lines) { lines[5] += " 1"; }, 6},
      {"extra line", [](auto& lines) { lines.push_back("1 2 3"); }, 8},
  };
  const std::string good = generate("randn", 1, 1, 1);
  const std::vector<std::string> lines = read_lines(good);
  ASSERT_EQ(lines.size(), 7u);
  for (const Malformation& malformation : cases) {
    std::vector<std::string> broken = lines;
    malformation.apply(broken);
    const std::string path = (dir_ / "broken.txt").string();
    write_lines(path, broken);
    try {
      read_seed_file(path);
      ADD_FAILURE() << malformation.name << ": no error";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::format) << malformation.name;
      const std::string where = path + ":" + std::to_string(malformation.line) + ":";
      EXPECT_NE(std::string(error.what()).find(where), std::string::npos)
          << malformation.name << ": '" << error.what() << "' does not start with " << where;
    }
  }
}

TEST_F(SeedFiles, EmptyFileAndMissingFileAreFormatErrors) {
  const std::string empty = (dir_ / "empty.txt").string();
  write_lines(empty, {});
  EXPECT_THROW(read_seed_file(empty), Error);
  try {
    read_seed_file((dir_ / "absent.txt").string());
    ADD_FAILURE() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::format);
    EXPECT_NE(std::string(error.what()).find("absent.txt"), std::string::npos);
  }
}

// ---- the check command ----

int run_check(const std::vector<std::string>& words, std::string& out, std::string& err) {
  const std::vector<std::string_view> args(words.begin(), words.end());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  try {
    const int code = tools::check_command(args);
    out = ::testing::internal::GetCapturedStdout();
    err = ::testing::internal::GetCapturedStderr();
    return code;
  } catch (...) {  // usage errors: end the capture before the exception leaves
    out = ::testing::internal::GetCapturedStdout();
    err = ::testing::internal::GetCapturedStderr();
    throw;
  }
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

TEST_F(SeedFiles, CheckCommandPrintsOneBlockPerFileInOrder) {
  std::vector<std::string> words;
  for (int c = 1; c <= 4; ++c) words.push_back(generate("randn", 2, 1, c));
  words.insert(words.end(), {"--strict", "--jobs", "3", "--backend", "cpu"});
  std::string out, err;
  EXPECT_EQ(run_check(words, out, err), 0) << out << err;
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), 8u) << out;
  for (std::size_t c = 1; c <= 4; ++c) {
    EXPECT_EQ(lines[2 * c - 2], "PASSED " + words[c - 1]);
    const std::string summary = "SUMMARY: fails=0/" + std::to_string(3 * c) + " (0.00%) max_diff=";
    EXPECT_EQ(lines[2 * c - 1].substr(0, summary.size()), summary);
  }
}

TEST_F(SeedFiles, CheckCommandReportsMalformedFilesAndGoesOn) {
  const std::string good = generate("small", 2, 2, 1);
  const std::string bad = (dir_ / "bad.txt").string();
  write_lines(bad, {"2 32 128 2 1"});
  std::string out, err;
  EXPECT_EQ(run_check({bad, good, "--jobs", "2"}, out, err), 1);
  EXPECT_EQ(out.find("FAILED " + bad + "\nSUMMARY: fails=1/1 (100.00%) max_diff=nan\n"), 0u) << out;
  EXPECT_NE(out.find("PASSED " + good + "\nSUMMARY: fails=0/"), std::string::npos) << out;
  EXPECT_NE(err.find(bad + ":1:"), std::string::npos) << err;
}

TEST_F(SeedFiles, CheckCommandVerboseAndUsageErrors) {
  const std::string good = generate("randn", 1, 1, 2);
  std::string out, err;
  EXPECT_EQ(run_check({good, "-v"}, out, err), 0);
  EXPECT_NE(out.find("chunk 1 sums"), std::string::npos) << out;
  EXPECT_THROW(run_check({good, "--backend", "cuda"}, out, err), Error);
  EXPECT_THROW(run_check({good, "--jobs", "0"}, out, err), Error);
  EXPECT_THROW(run_check({good, "--frobnicate"}, out, err), Error);
  EXPECT_THROW(run_check({}, out, err), Error);
}

TEST(SeedGentests, UsageErrors) {
  const std::vector<std::string_view> none;
  EXPECT_THROW(tools::gentests_command(none), Error);
  const std::vector<std::string_view> two_dirs{"a", "b"};
  EXPECT_THROW(tools::gentests_command(two_dirs), Error);
  const std::vector<std::string_view> bad_jobs{"--jobs", "x", "dir"};
  EXPECT_THROW(tools::gentests_command(bad_jobs), Error);
}

// Both grids asked for: an error before anything is written (it used to write the last one
// named, the full grid's 15 GB). The directory cannot be created, so nothing is written either way.
TEST(SeedGentests, QuickAndFullTogetherAreAnError) {
  using Args = std::vector<std::string_view>;
  for (const Args& args : {Args{"--quick", "--full", "/dev/null/grid"}, Args{"--full", "--quick", "/dev/null/grid"}}) {
    try {
      tools::gentests_command(args);
      ADD_FAILURE() << "no error";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("--quick and --full contradict each other"), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace chunktree::harness
