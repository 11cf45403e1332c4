// Reading test files (harness/text_arrays.hpp): what is refused before anything is parsed, numbers
// at the edges of fp32 and int64, and messages that quote a file's bytes.
#include "harness/text_arrays.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chunktree/types.hpp"
#include "harness/seed_format.hpp"
#include "harness/tree_format.hpp"
#include "support/address_space.hpp"
#include "support/test_directory.hpp"

namespace chunktree::harness {
namespace {

namespace fs = std::filesystem;

class InputFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_directory("chunktree_input");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  fs::path dir_;
};

// The message of the format error that reading `path` as a tree file throws ("" if none).
std::string tree_error(const std::string& path) {
  try {
    read_tree_file(path);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::format) << error.what();
    return error.what();
  }
  ADD_FAILURE() << path << " was read without an error";
  return "";
}

bool printable(const std::string& text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

// ---- what is refused before reading ----

TEST_F(InputFiles, DirectoryIsReportedAsADirectory) {
  const std::string message = tree_error(dir_.string());
  EXPECT_NE(message.find(dir_.string() + ": is a directory"), std::string::npos) << message;
  EXPECT_EQ(message.find("truncated"), std::string::npos) << message;
  EXPECT_FALSE(is_tree_file(dir_.string()));
}

// /dev/urandom and /dev/zero never end, and a FIFO without a writer blocks on open: each is
// refused, naming the file and what it is, without reading a byte.
TEST_F(InputFiles, DevicesAndFifosAreRefusedWithoutReading) {
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : std::vector<std::string>{"/dev/urandom", "/dev/zero", "/dev/null", fifo}) {
    const std::string message = tree_error(path);
    EXPECT_EQ(message.find(path + ": is a "), 0u) << message;
    EXPECT_NE(message.find("test files must be regular files"), std::string::npos) << message;
    EXPECT_FALSE(is_tree_file(path));
    EXPECT_THROW(read_seed_file(path), Error);
  }
  EXPECT_NE(tree_error(fifo).find("FIFO"), std::string::npos);
  EXPECT_NE(tree_error("/dev/zero").find("character device"), std::string::npos);
}

TEST_F(InputFiles, FilesOverTheSizeLimitAreRefusedBeforeReading) {
  const std::string path = write("huge.txt", "chunktree-tree 1\n");
  fs::resize_file(path, kMaxInputFileBytes + 1);  // sparse: nothing to read but zeros
  const std::string message = tree_error(path);
  EXPECT_NE(message.find(path + ": is larger than the 2147483648 bytes (2 GiB)"), std::string::npos) << message;
}

TEST_F(InputFiles, CannotOpenSaysWhy) {
  const std::string path = (dir_ / "absent.txt").string();
  const std::string message = tree_error(path);
  EXPECT_NE(message.find(path + ": cannot open the file for reading (No such file or directory)"), std::string::npos)
      << message;
}

// RLIMIT_AS caps the address space of a forked child, so that reading a large file runs out of
// memory there. The file is valid up to a line deep in it: a reader that parsed what it had
// read when memory ran out would pass it.
TEST_F(InputFiles, RunningOutOfMemoryWhileReadingIsAnError) {
  if (testing::kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no limit can be set";
  const std::string path = (dir_ / "padded.txt").string();
  write_tree_file(path, generate_tree_workload(1, 0));
  {
    std::ofstream stream(path, std::ios::binary | std::ios::app);
    const std::string comment = "# " + std::string(1021, 'x') + "\n";
    for (int i = 0; i < 48 * 1024; ++i) stream << comment;  // 48 MiB
    stream << "not part of any tree file\n";
  }
  ASSERT_NE(tree_error(path).find("unexpected content after the last"), std::string::npos);
  // A fresh process for the child: free heap that earlier tests of this process left mapped would
  // count as in use and could serve the read.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The child removes its own file and directory with calls that need no memory.
  const auto remove_own = [&] {
    ::unlink(path.c_str());
    ::rmdir(dir_.c_str());
  };
  EXPECT_EXIT(testing::exit_with_little_memory(std::size_t{24} << 20, ErrorCode::format, [&] { read_tree_file(path); }, remove_own),
              ::testing::ExitedWithCode(0),
              "padded.txt: not enough memory to read the file");
}

// ---- numbers ----

// Reads `word` as the one value of a line, or returns the error's message.
std::string read_value(const std::string& path, const std::string& word, float& value) {
  std::ofstream(path, std::ios::binary) << word << "\n";
  LineReader reader(path);
  try {
    value = reader.floats(reader.next("the value"), 1, "V")[0];
    return "";
  } catch (const Error& error) {
    return error.what();
  }
}

TEST_F(InputFiles, SignsAndRangesOfValues) {
  const std::string path = (dir_ / "value.txt").string();
  float value = 0.0f;
  for (const char* word : {"+-1", "++1", "-+1", "+", "-", "1e", "0x10", "1,5"}) {
    EXPECT_NE(read_value(path, word, value).find("is not a number"), std::string::npos) << word;
  }
  for (const char* word : {"1e999", "-1e999", "3.5e38", "1e39"}) {
    const std::string message = read_value(path, word, value);
    EXPECT_NE(message.find(std::string("('") + word + "') is out of range for fp32"), std::string::npos) << message;
  }
  const std::pair<const char*, float> readable[] = {
      {"+1.5", 1.5f}, {"-0", -0.0f}, {"1e-999", 0.0f}, {"-1e-50", -0.0f}, {"+.5", 0.5f}, {"3.4028235e38", 3.4028235e38f}};
  for (const auto& [word, expected] : readable) {
    EXPECT_EQ(read_value(path, word, value), "") << word;
    EXPECT_EQ(value, expected) << word;
    EXPECT_EQ(std::signbit(value), std::signbit(expected)) << word;
  }
  EXPECT_EQ(read_value(path, "-inf", value), "");
  EXPECT_EQ(value, -INFINITY);
  EXPECT_EQ(read_value(path, "nan", value), "");
  EXPECT_TRUE(std::isnan(value));
}

// A word past a field's range names the field's rule; past 64 bits, where the field's own rule comes
// after the parse (the chunk size must be 64), it says so rather than quote int64's range.
TEST_F(InputFiles, IntegersOutOfRangeSaySo) {
  const auto error_of = [&](const std::string& header) {
    try {
      read_seed_file(write("header.txt", header));
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  std::string message = error_of("1 64 128 1 99999999999999999999\n");
  EXPECT_NE(message.find(":1: n_chunks (header word 5) must be from 1 to 4194304, got '99999999999999999999'"), std::string::npos) << message;
  message = error_of("1 99999999999999999999 128 1 1\n");
  EXPECT_NE(message.find(":1: the chunk size (header word 2) does not fit a 64-bit integer, got '99999999999999999999'"), std::string::npos)
      << message;
  message = error_of("300 64 128 8192 1\n");
  EXPECT_NE(message.find(":1: the header's shape makes lines of 314572800 values"), std::string::npos) << message;
}

// ---- messages ----

TEST_F(InputFiles, MessagesEscapeBinaryBytesAndShortenLongWords) {
  const std::string word = std::string("\x1b[2J\x07\xff") + '\0';
  const std::string message = tree_error(write("binary.txt", "chunktree-tree 1\nq_heads " + word + "\n"));
  EXPECT_NE(message.find("got '\\x1b[2J\\x07\\xff\\x00'"), std::string::npos) << message;
  EXPECT_TRUE(printable(message)) << message;

  const std::string long_word = write("long.txt", "chunktree-tree 1\nq_heads " + std::string(1000, '7') + "x\n");
  const std::string shortened = tree_error(long_word);
  EXPECT_NE(shortened.find("got '" + std::string(40, '7') + "'..."), std::string::npos) << shortened;
  EXPECT_LT(shortened.size(), 200u) << shortened;
}

// ---- output files ----

// A file is written beside its name and put in place by close(): a write that never reaches close()
// (an error on the way) leaves nothing, a link at the name is replaced rather than followed, and a
// path that cannot be opened names itself and why.
TEST_F(InputFiles, OutputFilesAppearWholeOrNotAtAll) {
  const std::string path = (dir_ / "out.txt").string();
  {
    OutputFile abandoned(path);
    std::fputs("half", abandoned.get());
  }
  EXPECT_TRUE(fs::is_empty(dir_));

  const std::string target = write("target.txt", "keep me");
  fs::create_symlink(target, path);
  write_text_file(path, "written\n");
  EXPECT_FALSE(fs::is_symlink(path));
  std::stringstream written;
  written << std::ifstream(path).rdbuf();
  EXPECT_EQ(written.str(), "written\n");
  std::stringstream kept;
  kept << std::ifstream(target).rdbuf();
  EXPECT_EQ(kept.str(), "keep me");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 2);  // no .partial left

  const std::string missing = (dir_ / "no_such_dir" / "out.txt").string();
  try {
    OutputFile refused(missing);
    ADD_FAILURE() << "opened " << missing;
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), missing + ": cannot open the file for writing (No such file or directory)");
  }
}

}  // namespace
}  // namespace chunktree::harness
