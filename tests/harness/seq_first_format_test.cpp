// The seed project's sequence-first files: the grids, the generator against an independent fp64
// reference, the check (merging the file's shared states), --dump, malformed files, and inputs
// that the cache's dtype rounds (for both seed formats).
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
#include "harness/random.hpp"
#include "harness/seq_first_format.hpp"
#include "support/seed_files.hpp"

namespace chunktree::harness {
namespace {

using testing::SeedFiles;
using testing::check_options;
using testing::expect_format_error;
using testing::Malformation;
using testing::read_lines;
using testing::write_lines;

constexpr int kChunk = kSeedChunkSize;
constexpr int kDim = kSeedHeadDim;

// K or V of the file's first `tokens` tokens as reference::attention takes them: [tokens, H, 128].
std::vector<float> token_rows(const ChunkLines& chunks, int heads, int tokens) {
  std::vector<float> rows(static_cast<std::size_t>(tokens) * heads * kDim);
  for (int t = 0; t < tokens; ++t) {
    for (int h = 0; h < heads; ++h) {
      for (int d = 0; d < kDim; ++d) {
        rows[(static_cast<std::size_t>(t) * heads + h) * kDim + d] = chunks[t / kChunk][(static_cast<std::size_t>(h) * kChunk + t % kChunk) * kDim + d];
      }
    }
  }
  return rows;
}

// ---- the grids and the generator ----

TEST(SeqFirstGrid, HasTheIssuesSizesAndUniqueNames) {
  const std::vector<SeqFirstCase> quick = seq_first_grid(false);
  const std::vector<SeqFirstCase> full = seq_first_grid(true);
  EXPECT_EQ(quick.size(), 64u);  // 2 patterns × 2 S × 2 H × 2 C × 2 shared × 2 fractions
  EXPECT_EQ(full.size(), 2800u);  // 5 × 5 × 4 × (1 + 3 × 2 shared) × 4 fractions: C = 1 has shared 0 only
  std::set<std::string> names;
  for (const SeqFirstCase& one : full) names.insert(seq_first_file_name(one));
  EXPECT_EQ(names.size(), full.size());
  EXPECT_EQ(seq_first_file_name(SeqFirstCase{"small", {4, 2, 8}, 4, 464}), "seqfirst_small_s4_h2_c8_n4_t464.txt");
}

TEST(SeqFirstGenerate, InputsAreBf16NonZeroAndReproducible) {
  const SeqFirstCase one{"small", {2, 3, 2}, 1, 80};
  const SeqFirstFile first = generate_seq_first_file(one);
  EXPECT_EQ(first.q, generate_seq_first_file(one).q);
  EXPECT_EQ(first.output, generate_seq_first_file(one).output);
  std::size_t zeros = 0;
  for (const auto* lines : {&first.k, &first.v}) {
    for (const auto& line : *lines) {
      for (float value : line) {
        ASSERT_EQ(round_to(DType::bf16, value), value);
        zeros += value == 0.0f;
      }
    }
  }
  EXPECT_LT(zeros, 10u);
  EXPECT_THROW(generate_seq_first_file(SeqFirstCase{"small", {1, 1, 2}, 3, 100}), Error);  // N > C
  EXPECT_THROW(generate_seq_first_file(SeqFirstCase{"small", {1, 1, 2}, 0, 64}), Error);   // chunk 1 empty
}

// The output is plain fp64 attention over the first seq_tokens tokens, and each shared state is
// the chunk's own attention (attns / sums) and log-sum-exp (maxs + ln sums).
TEST(SeqFirstGenerate, ExpectedValuesAgreeWithTheFp64Reference) {
  const SeqFirstFile file = generate_seq_first_file(SeqFirstCase{"large", {2, 3, 3}, 2, 150});
  const int heads = file.shape.heads;
  const std::vector<float> k = token_rows(file.k, heads, file.seq_tokens);
  const std::vector<float> v = token_rows(file.v, heads, file.seq_tokens);
  for (int s = 0; s < file.shape.seqs; ++s) {
    const float* q = &file.q[static_cast<std::size_t>(s * heads) * kDim];
    std::vector<double> out(static_cast<std::size_t>(heads) * kDim), lse(heads);
    reference::attention(q, heads, k.data(), v.data(), file.seq_tokens, heads, kDim, 1.0 / std::sqrt(128.0), out.data(), lse.data());
    for (int i = 0; i < heads * kDim; ++i) EXPECT_NEAR(file.output[s * heads * kDim + i], out[i], 1e-5);
    for (int c = 0; c < file.shared_chunks; ++c) {
      const std::size_t offset = static_cast<std::size_t>(c) * kChunk * heads * kDim;
      reference::attention(q, heads, k.data() + offset, v.data() + offset, kChunk, heads, kDim, 1.0 / std::sqrt(128.0),
                           out.data(), lse.data());
      for (int h = 0; h < heads; ++h) {
        const std::size_t row = static_cast<std::size_t>(s * heads + h);
        const double sum = file.shared.sums[c][row];
        EXPECT_NEAR(file.shared.maxs[c][row] + std::log(sum), lse[h], 1e-5);
        for (int d = 0; d < kDim; ++d) EXPECT_NEAR(file.shared.attns[c][row * kDim + d] / sum, out[h * kDim + d], 1e-5);
      }
    }
  }
}

// ---- checking through the library ----

TEST_F(SeedFiles, SeqFirstShapesPassBothRules) {
  struct Shape {
    SeedShape shape;
    int shared, tokens;
  };
  const Shape shapes[] = {{{1, 1, 1}, 0, 16}, {{1, 1, 1}, 1, 64}, {{3, 5, 3}, 1, 129}, {{4, 2, 4}, 4, 200}, {{5, 1, 2}, 1, 128}};
  for (const Shape& one : shapes) {
    for (const char* pattern : {"randn", "large", "positive"}) {
      const std::string path = generate_seq_first(pattern, one.shape, one.shared, one.tokens);
      const CheckResult strict = check_seed_file(path, check_options(true));
      EXPECT_TRUE(strict.passed) << path << ": fails " << strict.fails << "/" << strict.total;
      EXPECT_EQ(strict.total, 1 + 3 * one.shared);  // the output, and each shared chunk's three arrays
      const CheckResult loose = check_seed_file(path, check_options(false));
      EXPECT_TRUE(loose.passed) << path;
      const std::int64_t rows = one.shape.seqs * one.shape.heads;
      EXPECT_EQ(loose.total, rows * kDim + one.shared * rows * (kDim + 2));
    }
  }
}

// The output is merged from the file's shared states, not from recomputed ones: the same state
// written another way ((max − ln 2, 2·sums, 2·attns)) merges to the same output, while the
// comparison of the states themselves fails.
TEST_F(SeedFiles, SeqFirstMergesTheFilesSharedStates) {
  SeqFirstFile file = read_seq_first_file(generate_seq_first("randn", {3, 2, 4}, 2, 230));
  const SeedOutputs computed = seq_first_chunk_states(file);
  SeedOutputs rewritten = file.shared;
  for (std::size_t c = 0; c < rewritten.maxs.size(); ++c) {
    for (float& max : rewritten.maxs[c]) max -= static_cast<float>(std::log(2.0));
    for (float& sum : rewritten.sums[c]) sum *= 2.0f;
    for (float& attn : rewritten.attns[c]) attn *= 2.0f;
  }
  const std::vector<float> merged = merged_output(file, rewritten, computed);
  for (std::size_t i = 0; i < merged.size(); ++i) ASSERT_NEAR(merged[i], file.output[i], 1e-5) << i;

  file.shared = rewritten;
  CheckOptions verbose = check_options(true);
  verbose.verbose = true;
  const CheckResult result = compare_seq_first(computed, file, verbose);
  EXPECT_FALSE(result.passed);
  EXPECT_EQ(result.fails, 6) << result.details;  // every array of both shared chunks, not the output
  EXPECT_NE(result.details.find("output max_diff"), std::string::npos);

  // A shared state that is really different moves the output: lse + 1 for every row of chunk 0.
  for (float& max : file.shared.maxs[0]) max += 1.0f;
  const CheckResult moved = compare_seq_first(computed, file, check_options(true));
  EXPECT_EQ(moved.fails, 7) << "the output fails too";
}

TEST_F(SeedFiles, SeqFirstDumpKeepsTheLayoutAndPassesStrict) {
  const std::string path = generate_seq_first("small", {3, 2, 3}, 1, 150);
  CheckOptions dumping = check_options(false);
  dumping.dump_path = (dir_ / "dump.txt").string();
  ASSERT_TRUE(check_seed_file(path, dumping).passed);
  const std::vector<std::string> original = read_lines(path);
  const std::vector<std::string> dumped = read_lines(dumping.dump_path);
  ASSERT_EQ(dumped.size(), original.size());
  ASSERT_EQ(dumped.size(), 1u + 1 + 2 * 3 + 1 + 3 * 1);
  EXPECT_EQ(dumped.front(), "3 64 128 2 3 150 1");
  for (std::size_t i = 0; i < 1 + 1 + 2 * 3; ++i) EXPECT_EQ(dumped[i], original[i]) << "line " << i + 1;
  const CheckResult again = check_seed_file(dumping.dump_path, check_options(true));
  EXPECT_TRUE(again.passed);
  EXPECT_EQ(again.max_diff, 0.0);
}

TEST_F(SeedFiles, SeqFirstCorruptedOutputFails) {
  const std::string path = generate_seq_first("randn", {2, 2, 2}, 0, 100);
  SeqFirstFile file = read_seq_first_file(path);
  file.output[5] += 1.0f;
  write_seq_first_file(path, file);
  const CheckResult loose = check_seed_file(path, check_options(false));
  EXPECT_EQ(loose.fails, 1);
  EXPECT_NEAR(loose.max_diff, 1.0, 1e-3);
  EXPECT_FALSE(check_seed_file(path, check_options(true)).passed);
}

// ---- malformed files ----

TEST_F(SeedFiles, SeqFirstMalformedFilesSayWhatToFix) {
  // s1_h1_c2, 1 shared chunk, 100 tokens: header, Q, K ×2, V ×2, output, maxs, sums, attns: 10 lines.
  const Malformation cases[] = {
      {"6 header words", [](auto& l) { l[0] = "1 64 128 1 2 100"; }, 1, "5 integers) or"},
      {"shared > chunks", [](auto& l) { l[0] = "1 64 128 1 2 100 3"; }, 1, "more than n_chunks (2)"},
      {"negative shared", [](auto& l) { l[0] = "1 64 128 1 2 100 -1"; }, 1, "n_shared_chunks"},
      {"tokens leave a chunk empty", [](auto& l) { l[0] = "1 64 128 1 2 64 1"; }, 1, "from 65 to 128"},
      {"tokens beyond the chunks", [](auto& l) { l[0] = "1 64 128 1 2 129 1"; }, 1, "from 65 to 128"},
      {"zero tokens", [](auto& l) { l[0] = "1 64 128 1 2 0 1"; }, 1, "seq_tokens"},
      {"chunk size 32", [](auto& l) { l[0] = "1 32 128 1 2 100 1"; }, 1, "use 64"},
      {"short K line", [](auto& l) { l[3].resize(l[3].size() / 2); }, 4, "K chunk 1"},
      {"extra output value", [](auto& l) { l[6] += " 1"; }, 7, "the output"},
      {"short sums line", [](auto& l) { l[8] = "1 2"; }, 9, "sums of shared chunk 0"},
      {"zero sum", [](auto& l) { l[8] = "0"; }, 9, "sums of shared chunk 0: value 1 is 0;"},
      {"negative sum", [](auto& l) { l[8] = "-2"; }, 9, "positive and finite"},
      {"infinite sum", [](auto& l) { l[8] = "inf"; }, 9, "positive and finite"},
      {"infinite maximum", [](auto& l) { l[7] = "-inf"; }, 8, "maxs of shared chunk 0: value 1 is -inf; a state's maximum"},
      {"NaN maximum", [](auto& l) { l[7] = "nan"; }, 8, "a finite score"},
      {"missing attns line", [](auto& l) { l.pop_back(); }, 10, "attns of shared chunk 0"},
      {"header says 2 shared chunks", [](auto& l) { l[0] = "1 64 128 1 2 100 2"; }, 11, "maxs of shared chunk 1"},
      {"header says 0 shared chunks", [](auto& l) { l[0] = "1 64 128 1 2 100 0"; }, 8, "promises exactly"},
  };
  const std::vector<std::string> lines = read_lines(generate_seq_first("randn", {1, 1, 2}, 1, 100));
  ASSERT_EQ(lines.size(), 10u);
  for (const Malformation& malformation : cases) {
    expect_format_error(dir_, lines, malformation, [](const std::string& path) { check_seed_file(path, check_options(false)); });
  }
}

TEST_F(SeedFiles, SeqFirstWriterRefusesArraysThatDoNotMatchTheHeader) {
  const SeqFirstFile good = generate_seq_first_file(SeqFirstCase{"randn", {2, 2, 3}, 1, 170});
  const std::string path = (dir_ / "written.txt").string();
  const auto expect_refused = [&](const SeqFirstFile& file, const std::string& words) {
    try {
      write_seq_first_file(path, file);
      ADD_FAILURE() << "written: " << words;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
    EXPECT_FALSE(std::filesystem::exists(path)) << words;  // refused before anything is written
  };
  SeqFirstFile more_shared = good;
  more_shared.shared_chunks = 2;
  expect_refused(more_shared, "shared states hold shared_chunks lines");
  SeqFirstFile short_k = good;
  short_k.k.pop_back();
  expect_refused(short_k, "K and V hold n_chunks lines");
  SeqFirstFile cut = good;
  cut.seq_tokens = 128;
  expect_refused(cut, "seq_tokens 128 leaves a chunk empty");
  write_seq_first_file(path, good);
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST_F(SeedFiles, EachSeedReaderNamesTheOtherFormat) {
  const std::string chunk_first = generate("randn", 1, 1, 1);
  const std::string seq_first = generate_seq_first("randn", {1, 1, 1}, 0, 64);
  EXPECT_THROW(read_seq_first_file(chunk_first), Error);
  try {
    read_seed_file(seq_first);
    ADD_FAILURE() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("sequence-first"), std::string::npos) << error.what();
  }
}

// ---- inputs that the cache's dtype rounds ----

// Moves every non-zero input off the bf16 grid (by up to 2 parts in 10^3), as inputs written in
// fp32 would be; the callers then recompute the expected values from the moved inputs.
void move_off_bf16(std::vector<float>& q, ChunkLines& k, ChunkLines& v) {
  Random random(seed_from("off bf16"));
  const auto move = [&](std::vector<float>& line) {
    for (float& value : line) value *= static_cast<float>(1.0 + 2e-3 * (random.uniform(0.1, 1.0)));
  };
  move(q);
  for (ChunkLines* lines : {&k, &v}) {
    for (auto& line : *lines) move(line);
  }
}

TEST_F(SeedFiles, RoundedInputsAreReportedAndJudgedOnTheRoundedInputs) {
  // Sequence-first: the file's own values are fp64 on the unrounded inputs.
  SeqFirstFile seq_file = generate_seq_first_file(SeqFirstCase{"large", {2, 2, 3}, 1, 170});
  move_off_bf16(seq_file.q, seq_file.k, seq_file.v);
  set_reference_values(seq_file);
  const std::string seq_path = (dir_ / "seq.txt").string();
  write_seq_first_file(seq_path, seq_file);
  // Chunk-first likewise.
  SeedFile chunk_file = generate_seed_file(SeedCase{"large", {2, 2, 2}});
  move_off_bf16(chunk_file.q, chunk_file.k, chunk_file.v);
  chunk_file.outputs = reference_outputs(chunk_file);
  const std::string chunk_path = (dir_ / "chunk.txt").string();
  write_seed_file(chunk_path, chunk_file);

  for (const std::string& path : {seq_path, chunk_path}) {
    // f32 (the CPU backend's cache): nothing is rounded, the file is judged as it is.
    const CheckResult exact = check_seed_file(path, check_options(true), DType::f32);
    EXPECT_TRUE(exact.passed) << path;
    EXPECT_TRUE(exact.summary_note.empty());
    // bf16 (the GPU's cache): every input rounded; the kernel passes against fp64 on the rounded
    // inputs, while the file's own values (of the unrounded inputs) are further off.
    const CheckResult rounded = check_seed_file(path, check_options(true), DType::bf16);
    EXPECT_TRUE(rounded.passed) << path << rounded.details;
    EXPECT_NE(rounded.details.find("Q/K/V values are not exact in bf16"), std::string::npos) << rounded.details;
    EXPECT_NE(rounded.details.find("against the file's expected values (not judged):  fails="), std::string::npos);
    EXPECT_EQ(rounded.summary_note.find("verdict=fp64-on-bf16-rounded-inputs file_expected: fails="), 0u) << rounded.summary_note;
    // Q, K and V values are all looked at: S·H·128 + 2·C·H·64·128.
    const std::string all = path == seq_path ? " of 98816 Q/K/V" : " of 66048 Q/K/V";
    EXPECT_NE(rounded.details.find(all), std::string::npos) << rounded.details;
    // A dump holds the inputs the values were computed from (the rounded ones): checking it again
    // rounds nothing and gives the same bits.
    CheckOptions dumping = check_options(true);
    dumping.dump_path = (dir_ / "dump.txt").string();
    ASSERT_TRUE(check_seed_file(path, dumping, DType::bf16).passed);
    const CheckResult again = check_seed_file(dumping.dump_path, check_options(true), DType::bf16);
    EXPECT_TRUE(again.passed) << again.details;
    EXPECT_TRUE(again.summary_note.empty()) << again.summary_note;
    EXPECT_EQ(again.max_diff, 0.0) << path;
  }
}

TEST_F(SeedFiles, RoundedInputsStillFailForTheKernelsError) {
  // A wrong kernel is simulated by wrong values: judged against the rounded inputs' fp64 values,
  // a computed state that is off fails whatever the file says.
  const InputRounding rounding{.rounded = 3, .total = 10, .max_change = 0.01};
  const CheckResult result = judge_rounded_check(rounding, DType::bf16, [](bool against_rounded) {
    CheckResult one;
    one.fails = against_rounded ? 1 : 0;
    one.total = 1;
    one.passed = one.fails == 0;
    return one;
  });
  EXPECT_FALSE(result.passed);
  EXPECT_NE(result.details.find("3 of 10"), std::string::npos) << result.details;
  EXPECT_NE(result.summary_note.find("file_expected: fails=0/1"), std::string::npos) << result.summary_note;
}

}  // namespace
}  // namespace chunktree::harness
