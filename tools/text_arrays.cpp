#include "text_arrays.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "chunktree/types.hpp"

namespace chunktree::tools {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// from_chars does not accept a leading '+', nor the "inf"/"nan" spellings some writers use.
bool parse_double(std::string_view word, double& value) {
  if (!word.empty() && word.front() == '+') word.remove_prefix(1);
  const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
  return error == std::errc() && end == word.data() + word.size();
}

}  // namespace

LineReader::LineReader(const std::string& path) : path_(path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error(ErrorCode::format, path + ": cannot open the file for reading");
  std::ostringstream buffer;
  buffer << stream.rdbuf();
  text_ = buffer.str();
}

std::string_view LineReader::next(std::string_view what) {
  if (at_end()) {
    throw Error(ErrorCode::format, path_ + ":" + std::to_string(line_number_ + 1) + ": the file ends where " +
                                       std::string(what) + " was expected (truncated file?)");
  }
  const std::size_t end = text_.find('\n', position_);
  const std::size_t stop = end == std::string::npos ? text_.size() : end;
  std::string_view line(text_.data() + position_, stop - position_);
  position_ = end == std::string::npos ? text_.size() : end + 1;
  ++line_number_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void LineReader::fail(const std::string& message) const {
  throw Error(ErrorCode::format, path_ + ":" + std::to_string(line_number_) + ": " + message);
}

std::vector<std::string_view> LineReader::words(std::string_view line) {
  std::vector<std::string_view> result;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) result.push_back(line.substr(start, i - start));
  }
  return result;
}

std::vector<float> LineReader::floats(std::string_view line, std::size_t count, std::string_view what) const {
  std::vector<float> values;
  values.reserve(count);
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i == start) break;
    const std::string_view word = line.substr(start, i - start);
    double value = 0.0;
    if (!parse_double(word, value)) {
      fail(std::string(what) + ": value " + std::to_string(values.size() + 1) + " ('" + std::string(word.substr(0, 40)) +
           "') is not a number");
    }
    if (values.size() == count) {
      fail(std::string(what) + ": expected " + std::to_string(count) + " values but the line has more");
    }
    values.push_back(static_cast<float>(value));
  }
  if (values.size() != count) {
    fail(std::string(what) + ": expected " + std::to_string(count) + " values but the line has " + std::to_string(values.size()));
  }
  return values;
}

std::int64_t LineReader::integer(std::string_view word, std::string_view what) const {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (error != std::errc() || end != word.data() + word.size()) {
    fail(std::string(what) + " must be an integer, got '" + std::string(word.substr(0, 40)) + "'");
  }
  return value;
}

double LineReader::number(std::string_view word, std::string_view what) const {
  double value = 0.0;
  if (!parse_double(word, value)) fail(std::string(what) + " must be a number, got '" + std::string(word.substr(0, 40)) + "'");
  return value;
}

namespace {

template <typename T>
void write_values(std::FILE* file, std::span<const T> values) {
  std::vector<char> line;
  line.reserve(values.size() * 16 + 1);
  char buffer[64];
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) line.push_back(' ');
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, values[i]);
    line.insert(line.end(), buffer, result.ptr);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), file);
}

}  // namespace

void write_floats(std::FILE* file, std::span<const float> values) { write_values(file, values); }

OutputFile::OutputFile(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
  if (file_ == nullptr) {
    throw Error(ErrorCode::invalid_argument, path + ": cannot open the file for writing (" + std::strerror(errno) + ")");
  }
}

OutputFile::~OutputFile() {
  if (file_ != nullptr) std::fclose(file_);
}

void OutputFile::close() {
  const bool failed = std::ferror(file_) != 0;
  const bool close_failed = std::fclose(file_) != 0;
  file_ = nullptr;
  if (failed || close_failed) throw Error(ErrorCode::invalid_argument, path_ + ": writing the file failed (disk full?)");
}

}  // namespace chunktree::tools
