// Line-oriented text files of decimal arrays, shared by the seed and tree test formats.
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chunktree::harness {

// Test files are read whole into memory, so larger ones are refused before reading
// (docs/FORMATS.md, "Limits"). The largest files the tools write are smaller: 52 MB (gentests
// --full) and ~1.6 GB (gentrees --sequences at its maximum).
inline constexpr std::int64_t kMaxInputFileBytes = std::int64_t{2} << 30;

// The whole content of a test file. Throws a format error naming the file and saying why when
// it cannot be opened (with the system's reason), is not a regular file (a directory, device,
// FIFO or socket: nothing is read from those), is larger than kMaxInputFileBytes, or does not
// fit in memory.
std::string read_input_file(const std::string& path);
// The first `bytes` bytes of a test file; empty when read_input_file would refuse the file.
std::string input_file_head(const std::string& path, std::size_t bytes);

// `text` with its control bytes (and, unless `keep_utf8`, every byte past ASCII) written as \xNN,
// so that a binary file, or a file name with a newline, cannot write control sequences or fake
// lines to a terminal or a log; `keep_utf8` keeps a message's own non-ASCII text (·, ≥) readable.
std::string printable_text(std::string_view text, bool keep_utf8 = false);
// A word of a file, quoted for a message: the first 40 bytes, made printable.
std::string quote_word(std::string_view word);

// Reads a text file line by line, remembering where it is for error messages.
class LineReader {
 public:
  explicit LineReader(const std::string& path);  // throws what read_input_file throws
  // The next line; throws a format error naming `what` if the file has ended.
  std::string_view next(std::string_view what);
  bool at_end() const { return position_ >= text_.size(); }
  // Throws a format error "<path>:<line>: <message>" about the last line read.
  [[noreturn]] void fail(const std::string& message) const;
  // Parses the last line read as exactly `count` decimals, each rounded to the nearest fp32
  // (NaN and Inf accepted as values; a magnitude beyond fp32's largest is an error).
  std::vector<float> floats(std::string_view line, std::size_t count, std::string_view what) const;
  // Whitespace-separated words of a line.
  static std::vector<std::string_view> words(std::string_view line);
  // Parses an integer word in [min, max]; throws a format error naming `what` otherwise.
  std::int64_t integer(std::string_view word, std::string_view what,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) const;
  // Parses one decimal like floats() does.
  float number(std::string_view word, std::string_view what) const;

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

// A file written through a temporary one beside it (`path`.<pid>.<n>.partial) that close() renames
// over `path`: a write that fails (a full disk) leaves no half-written file under the name, and a
// link at `path` is replaced, not followed. Opening throws an error that names `path` and why; the
// temporary file is removed if close() is never called (an error on the way) or fails.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  std::FILE* get() const { return file_; }
  void write(std::string_view text);  // a failure is kept for close() with its reason
  void close();  // flushes, reports a write error and its reason, and renames the file into place

 private:
  std::string path_;
  std::string partial_;
  std::FILE* file_ = nullptr;
  int write_failure_ = 0;
};

// Writes `text` to `path` as OutputFile does.
void write_text_file(const std::string& path, std::string_view text);
// Throws OutputFile's error where `path` cannot be written, leaving nothing behind: a command checks
// its outputs before a long run and writes them (write_text_file) only at its end.
void expect_writable(const std::string& path);

}  // namespace chunktree::harness
