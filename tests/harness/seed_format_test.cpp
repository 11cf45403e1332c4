// The seed project's chunk-first files: generation, the library-backed check, --dump, and
// malformed files. (The check and gentests commands on them: tests/tools/.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "chunktree/numeric.hpp"
#include "chunktree/reference.hpp"
#include "chunktree/types.hpp"
#include "harness/seed_format.hpp"
#include "support/seed_files.hpp"

namespace chunktree::harness {
namespace {

namespace fs = std::filesystem;

using testing::SeedFiles;
using testing::check_options;
using testing::expect_format_error;
using testing::Malformation;
using testing::read_lines;
using testing::write_lines;

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
  const CheckResult loose = check_seed_file(path, check_options(false));
  EXPECT_TRUE(loose.passed);
  EXPECT_EQ(loose.fails, 0);
  EXPECT_EQ(loose.total, 2 * 4 * 8 * (128 + 2));  // every element of attns, maxs and sums
  EXPECT_LT(loose.max_diff, 1e-3);
  const CheckResult strict = check_seed_file(path, check_options(true));
  EXPECT_TRUE(strict.passed);
  EXPECT_EQ(strict.total, 2 * 3);  // chunks × arrays
}

TEST_F(SeedFiles, ShapesOffTheGridPassStrict) {
  const SeedShape shapes[] = {{3, 5, 7}, {1, 1, 1}, {1, 3, 2}, {5, 1, 3}};
  for (const SeedShape& shape : shapes) {
    for (const char* pattern : {"randn", "large", "positive"}) {
      const std::string path = generate(pattern, shape.seqs, shape.heads, shape.chunks);
      const CheckResult result = check_seed_file(path, check_options(true));
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
  CheckOptions dumping = check_options(false);
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
  const CheckResult again = check_seed_file(dumped, check_options(true));
  EXPECT_TRUE(again.passed);
  EXPECT_EQ(again.max_diff, 0.0);
}

TEST_F(SeedFiles, CorruptedExpectedValueFails) {
  const std::string path = generate("randn", 4, 2, 2);
  SeedFile file = read_seed_file(path);
  file.outputs.attns[1][7] += 1000.0f;
  write_seed_file(path, file);

  const CheckResult loose = check_seed_file(path, check_options(false));
  EXPECT_FALSE(loose.passed);
  EXPECT_EQ(loose.fails, 1);
  EXPECT_NEAR(loose.max_diff, 1000.0, 1e-3);
  const CheckResult strict = check_seed_file(path, check_options(true));
  EXPECT_FALSE(strict.passed);
  EXPECT_EQ(strict.fails, 1);  // only attns of chunk 1
}

TEST_F(SeedFiles, SmallRelativeErrorsFailStrictOnly) {
  const std::string path = generate("randn", 4, 2, 1);
  SeedFile file = read_seed_file(path);
  for (float& sum : file.outputs.sums[0]) sum *= 1.01f;  // 1%: inside 3%, outside the 1e-3 norm
  write_seed_file(path, file);
  EXPECT_TRUE(check_seed_file(path, check_options(false)).passed);
  const CheckResult strict = check_seed_file(path, check_options(true));
  EXPECT_FALSE(strict.passed);
  EXPECT_EQ(strict.fails, 1);
}

TEST_F(SeedFiles, NonFiniteComputedValuesFail) {
  const std::string path = generate("randn", 2, 1, 1);
  std::vector<std::string> lines = read_lines(path);
  lines[1] = "nan" + lines[1].substr(lines[1].find(' '));  // Q[0, 0, 0]: row 0 computes NaN
  write_lines(path, lines);
  for (bool strict : {false, true}) {
    const CheckResult result = check_seed_file(path, check_options(strict));
    EXPECT_FALSE(result.passed);
    EXPECT_TRUE(std::isinf(result.max_diff));
  }
}

// ---- malformed files ----

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
    expect_format_error(dir_, lines, malformation, [](const std::string& path) { read_seed_file(path); });
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

}  // namespace
}  // namespace chunktree::harness
