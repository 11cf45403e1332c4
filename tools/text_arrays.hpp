// Line-oriented text files of decimal arrays, shared by the seed and tree test formats.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chunktree::tools {

// Reads a text file line by line, remembering where it is for error messages.
class LineReader {
 public:
  explicit LineReader(const std::string& path);  // throws format error if unreadable
  // The next line; throws a format error naming `what` if the file has ended.
  std::string_view next(std::string_view what);
  bool at_end() const { return position_ >= text_.size(); }
  // Throws a format error "<path>:<line>: <message>" about the last line read.
  [[noreturn]] void fail(const std::string& message) const;
  // Parses the last line read as exactly `count` decimals (NaN and Inf accepted as values).
  std::vector<float> floats(std::string_view line, std::size_t count, std::string_view what) const;
  // Whitespace-separated words of a line.
  static std::vector<std::string_view> words(std::string_view line);
  // Parses an integer word; throws a format error naming `what` if it is not one.
  std::int64_t integer(std::string_view word, std::string_view what) const;
  double number(std::string_view word, std::string_view what) const;

  const std::string& path() const { return path_; }
  std::size_t line_number() const { return line_number_; }

 private:
  std::string path_;
  std::string text_;
  std::size_t position_ = 0;
  std::size_t line_number_ = 0;
};

// Writes values space-separated on one line, each in the shortest form that reads back exactly.
void write_floats(std::FILE* file, std::span<const float> values);

// Opens a file for writing, throwing an error that names it on failure; closes on scope exit.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  std::FILE* get() const { return file_; }
  void close();  // flushes and reports write errors

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace chunktree::tools
