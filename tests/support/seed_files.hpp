// Seed-format files (chunk-first and sequence-first) for a test: a fixture that gives each test a fresh directory to generate them
// into, and writing a file line by line (to break one).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "harness/seed_format.hpp"
#include "harness/seq_first_format.hpp"

namespace chunktree::testing {

// A fresh directory per test, removed afterwards.
class SeedFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = std::filesystem::path(::testing::TempDir()) / ("chunktree_seed_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Generates the case into the test's directory and returns the file's path.
  std::string generate(const std::string& pattern, int seqs, int heads, int chunks) const {
    const harness::SeedCase seed_case{pattern, harness::SeedShape{seqs, heads, chunks}};
    const std::string path = (dir_ / harness::seed_file_name(seed_case)).string();
    harness::write_seed_file(path, harness::generate_seed_file(seed_case));
    return path;
  }

  // The same for a sequence-first file: `shared` chunks' states, `tokens` tokens read.
  std::string generate_seq_first(const std::string& pattern, harness::SeedShape shape, int shared, int tokens) const {
    const harness::SeqFirstCase seq_case{pattern, shape, shared, tokens};
    const std::string path = (dir_ / harness::seq_first_file_name(seq_case)).string();
    harness::write_seq_first_file(path, harness::generate_seq_first_file(seq_case));
    return path;
  }

  std::filesystem::path dir_;
};

// The checker's options with the --strict rule or the default one.
inline harness::CheckOptions check_options(bool strict) {
  harness::CheckOptions options;
  options.strict = strict;
  return options;
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream stream(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

inline void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream stream(path);
  for (const std::string& line : lines) stream << line << '\n';
}

// A file broken one way, and what reading it must report.
struct Malformation {
  const char* name;
  std::function<void(std::vector<std::string>&)> apply;
  int line;              // the line the error must name
  const char* says = "";  // part of the message
};

// Writes `lines` broken by the malformation into `dir` and expects `read` to throw a format error
// that starts with "FILE:LINE:" and says what it should.
inline void expect_format_error(const std::filesystem::path& dir, std::vector<std::string> lines,
                                const Malformation& malformation, const std::function<void(const std::string&)>& read) {
  malformation.apply(lines);
  const std::string path = (dir / "broken.txt").string();
  write_lines(path, lines);
  try {
    read(path);
    ADD_FAILURE() << malformation.name << ": no error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(error.code(), ErrorCode::format) << malformation.name;
    EXPECT_EQ(message.find(path + ":" + std::to_string(malformation.line) + ":"), 0u) << malformation.name << ": " << message;
    EXPECT_NE(message.find(malformation.says), std::string::npos) << malformation.name << ": " << message;
  }
}

}  // namespace chunktree::testing
