// chunktree check: one block per file in the order given, malformed files, usage errors, and
// --dump (every input gets its own dump, or the run stops before writing any).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/seed_format.hpp"
#include "support/seed_files.hpp"
#include "support/test_directory.hpp"

namespace chunktree::tools {
namespace {

namespace fs = std::filesystem;

class CheckDump : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_directory("chunktree_dump");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A seed file of `seqs` rows at `relative` (its folders created).
  std::string seed_file(const std::string& relative, int seqs) const {
    const fs::path path = dir_ / relative;
    fs::create_directories(path.parent_path());
    harness::write_seed_file(path.string(), harness::generate_seed_file(harness::SeedCase{"randn", harness::SeedShape{seqs, 1, 1}}));
    return path.string();
  }
  std::string dump_dir() const { return (dir_ / "dump").string(); }

  fs::path dir_;
};

// Runs check_command with stdout and stderr captured into out and err; rethrows its usage errors.
int run_check(const std::vector<std::string>& words, std::string& out, std::string& err) {
  const std::vector<std::string_view> args(words.begin(), words.end());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  try {
    const int code = check_command(args);
    out = ::testing::internal::GetCapturedStdout();
    err = ::testing::internal::GetCapturedStderr();
    return code;
  } catch (...) {  // usage errors: end the capture before the exception leaves
    out = ::testing::internal::GetCapturedStdout();
    err = ::testing::internal::GetCapturedStderr();
    throw;
  }
}

// The same, the output dropped.
int run_check(const std::vector<std::string>& words) {
  std::string out, err;
  return run_check(words, out, err);
}

std::string usage_error(const std::vector<std::string>& words) {
  try {
    run_check(words);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "check ran without a usage error";
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream text;
  text << stream.rdbuf();
  return text.str();
}

// One dump would have been lost (--jobs 1) or two interleaved into one file (--jobs 2).
TEST_F(CheckDump, SameFileNameFromTwoFoldersIsRefusedBeforeAnythingIsWritten) {
  const std::string first = seed_file("a/x.txt", 1);
  const std::string second = seed_file("b/x.txt", 2);
  for (const char* jobs : {"1", "2"}) {
    const std::string message = usage_error({first, second, "--dump", dump_dir(), "--jobs", jobs});
    EXPECT_NE(message.find("'" + first + "' and '" + second + "' would both be dumped to '" + dump_dir() + "/x.txt'"),
              std::string::npos)
        << message;
    EXPECT_FALSE(fs::exists(dump_dir() + "/x.txt"));
  }
  EXPECT_NE(usage_error({first, first, "--dump", dump_dir()}).find("would both be dumped"), std::string::npos);
  EXPECT_NE(usage_error({first, "--dump", ""}).find("--dump needs a directory, got an empty word"), std::string::npos);  // not "no dumps"
}

TEST_F(CheckDump, DumpsNeverOverwriteAnInput) {
  const std::string inside = seed_file("dump/x.txt", 1);
  const std::string inside_text = read_text(inside);
  EXPECT_NE(usage_error({inside, "--dump", dump_dir()}).find("'" + inside + "' is an input file"), std::string::npos);
  EXPECT_EQ(read_text(inside), inside_text);

  // dump/z.txt links to another input: writing z.txt's dump would overwrite that input.
  const std::string other = seed_file("b/y.txt", 2);
  const std::string other_text = read_text(other);
  fs::create_symlink(other, dump_dir() + "/z.txt");
  const std::string message = usage_error({seed_file("c/z.txt", 1), other, "--dump", dump_dir()});
  EXPECT_NE(message.find("'" + dump_dir() + "/z.txt' is an input file"), std::string::npos) << message;
  EXPECT_EQ(read_text(other), other_text);
}

TEST_F(CheckDump, EveryFileGetsItsOwnDumpWithSeveralJobs) {
  std::vector<std::string> words;
  for (int seqs = 1; seqs <= 4; ++seqs) {
    words.push_back(seed_file("in" + std::to_string(seqs) + "/s" + std::to_string(seqs) + ".txt", seqs));
  }
  words.insert(words.end(), {"--dump", dump_dir(), "--jobs", "2"});
  EXPECT_EQ(run_check(words), 0);
  for (int seqs = 1; seqs <= 4; ++seqs) {
    const std::string dump = dump_dir() + "/s" + std::to_string(seqs) + ".txt";
    EXPECT_EQ(harness::read_seed_file(dump).shape.seqs, seqs);
    harness::CheckOptions strict;
    strict.strict = true;
    EXPECT_TRUE(harness::check_seed_file(dump, strict).passed) << dump;
  }
}

// ---- seed files: one block per file, malformed files, usage errors ----

using testing::SeedFiles;
using testing::write_lines;

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

// A file name is printed with its non-printable bytes as \xNN: a newline in it cannot make a line of
// its own (a fake PASSED line for whatever reads the output).
TEST_F(SeedFiles, CheckCommandPrintsAFileNameOnOneLine) {
  const std::string file = generate("randn", 2, 1, 1);
  const std::string odd = (dir_ / "a\nPASSED b.txt").string();
  fs::copy_file(file, odd);
  std::string out, err;
  EXPECT_EQ(run_check({odd, "--backend", "cpu"}, out, err), 0) << out << err;
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(lines[0], "PASSED " + (dir_ / "a\\x0aPASSED b.txt").string());
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

TEST_F(SeedFiles, CheckCommandNamesAByteOrderMark) {
  const std::string marked = (dir_ / "marked.txt").string();
  write_lines(marked, {"\xEF\xBB\xBF" "chunktree-tree 1"});
  std::string out, err;
  EXPECT_EQ(run_check({marked}, out, err), 1);
  EXPECT_NE(err.find(marked + ":1: the file starts with a UTF-8 byte-order mark"), std::string::npos) << err;
}

// Sequence-first files are told apart by their 7-integer header and checked beside chunk-first
// ones; a malformed one says what to fix.
TEST_F(SeedFiles, CheckCommandReadsSequenceFirstFiles) {
  const std::string chunk_first = generate("randn", 2, 1, 2);
  const std::string seq_first = generate_seq_first("randn", harness::SeedShape{2, 3, 2}, 1, 100);
  const std::string bad = (dir_ / "bad_seq_first.txt").string();
  write_lines(bad, {"1 64 128 1 2 100 3"});
  std::string out, err;
  EXPECT_EQ(run_check({seq_first, chunk_first, bad, "--strict", "-v"}, out, err), 1);
  EXPECT_NE(out.find("PASSED " + seq_first + "\n  chunk 0 output "), std::string::npos) << out;
  EXPECT_NE(out.find("SUMMARY: fails=0/4 (0.00%)"), std::string::npos) << out;  // output + 3 shared arrays
  EXPECT_NE(out.find("PASSED " + chunk_first), std::string::npos) << out;
  EXPECT_NE(err.find(bad + ":1: n_shared_chunks is 3, more than n_chunks (2)"), std::string::npos) << err;
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

}  // namespace
}  // namespace chunktree::tools
