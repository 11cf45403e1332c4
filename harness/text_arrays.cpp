#include "harness/text_arrays.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "chunktree/types.hpp"

namespace chunktree::harness {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

enum class Parsed { number, not_a_number, out_of_range };

constexpr const char* kOutOfRange = "out of range for fp32 (magnitudes up to 3.4028235e38)";

// A decimal word as the nearest fp32. from_chars takes no leading '+', so it is skipped here,
// but only before a digit, '.', 'inf' or 'nan': "+-1" is not a number.
Parsed parse_float(std::string_view word, float& value) {
  if (word.starts_with('+')) {
    word.remove_prefix(1);
    if (word.starts_with('-') || word.starts_with('+')) return Parsed::not_a_number;
  }
  const char* end = word.data() + word.size();
  const auto [stop, error] = std::from_chars(word.data(), end, value);
  if (stop != end || error == std::errc::invalid_argument) return Parsed::not_a_number;
  if (error == std::errc::result_out_of_range) {
    // from_chars leaves `value` alone here. A magnitude below fp32's smallest rounds to zero, as
    // any value rounds to its nearest fp32; one beyond its largest has no fp32.
    const double magnitude = std::strtod(std::string(word).c_str(), nullptr);
    if (std::abs(magnitude) >= 1.0) return Parsed::out_of_range;
    value = std::signbit(magnitude) ? -0.0f : 0.0f;
  }
  return Parsed::number;
}

std::string system_reason() { return std::string("(") + std::strerror(errno) + ")"; }

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::format, path + ": " + why);
}

[[noreturn]] void refuse_size(const std::string& path) {
  refuse(path, "is larger than the " + std::to_string(kMaxInputFileBytes) +
                   " bytes (2 GiB) that a test file may have (docs/FORMATS.md, 'Limits')");
}

std::string kind_of_special_file(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

// A file descriptor, closed on scope exit.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(Descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Descriptor& operator=(Descriptor&&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// `path` open for reading, once it is known to be a regular file within the size limit. Opening
// does not block: O_NONBLOCK keeps a FIFO from waiting for a writer before it is refused.
Descriptor open_input_file(const std::string& path, std::int64_t& size) {
  Descriptor file(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (file.get() < 0) refuse(path, "cannot open the file for reading " + system_reason());
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) refuse(path, "cannot read the file's status " + system_reason());
  if (S_ISDIR(status.st_mode)) refuse(path, "is a directory, not a test file; name the files in it (e.g. DIR/*.txt)");
  if (!S_ISREG(status.st_mode)) {
    refuse(path, "is " + kind_of_special_file(status.st_mode) + "; test files must be regular files");
  }
  if (status.st_size > kMaxInputFileBytes) refuse_size(path);
  size = status.st_size;
  return file;
}

// Reads until the end of the file, which need not be where its size said (files in /proc say 0).
std::string read_to_end(const Descriptor& file, const std::string& path, std::int64_t size) {
  std::string text;
  try {
    text.reserve(static_cast<std::size_t>(size));
    std::array<char, 1 << 16> buffer;
    for (;;) {
      const ssize_t got = ::read(file.get(), buffer.data(), buffer.size());
      if (got == 0) return text;
      if (got < 0) {
        if (errno == EINTR) continue;
        refuse(path, "reading the file failed " + system_reason());
      }
      if (static_cast<std::int64_t>(text.size()) + got > kMaxInputFileBytes) refuse_size(path);
      text.append(buffer.data(), static_cast<std::size_t>(got));
    }
  } catch (const std::bad_alloc&) {
    // Parsing what was read so far could pass a file whose error lies further on.
    refuse(path, "not enough memory to read the file (" + std::to_string(size) +
                     " bytes); check it with fewer --jobs or on a machine with more memory");
  }
}

}  // namespace

std::string read_input_file(const std::string& path) {
  std::int64_t size = 0;
  const Descriptor file = open_input_file(path, size);
  return read_to_end(file, path, size);
}

std::string input_file_head(const std::string& path, std::size_t bytes) {
  std::int64_t size = 0;
  try {
    const Descriptor file = open_input_file(path, size);
    std::string head(bytes, '\0');
    ssize_t got = 0;
    do {
      got = ::read(file.get(), head.data(), head.size());
    } while (got < 0 && errno == EINTR);
    head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    return head;
  } catch (const Error&) {
    return "";  // read_input_file says why
  }
}

std::string printable_text(std::string_view text, bool keep_utf8) {
  std::string shown;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 0x20 && byte < 0x7f) || (keep_utf8 && byte >= 0x80)) {
      shown += c;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      shown += escaped;
    }
  }
  return shown;
}

std::string quote_word(std::string_view word) {
  constexpr std::size_t kShown = 40;
  std::string quoted = "'";  // appended: GCC 12 warns falsely (-Wrestrict) on a chain of operator+
  quoted.append(printable_text(word.substr(0, kShown)));
  quoted.append(word.size() > kShown ? "'..." : "'");
  return quoted;
}

LineReader::LineReader(const std::string& path) : path_(path), text_(read_input_file(path)) {}

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
  values.reserve(std::min(count, line.size() / 2 + 1));  // what the line can hold, not what a header claims
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i == start) break;
    const std::string_view word = line.substr(start, i - start);
    float value = 0.0f;
    const Parsed parsed = parse_float(word, value);
    if (parsed != Parsed::number) {
      fail(std::string(what) + ": value " + std::to_string(values.size() + 1) + " (" + quote_word(word) + ") is " +
           (parsed == Parsed::out_of_range ? kOutOfRange : "not a number"));
    }
    if (values.size() == count) {
      fail(std::string(what) + ": expected " + std::to_string(count) + " values but the line has more");
    }
    values.push_back(value);
  }
  if (values.size() != count) {
    fail(std::string(what) + ": expected " + std::to_string(count) + " values but the line has " + std::to_string(values.size()));
  }
  return values;
}

std::int64_t LineReader::integer(std::string_view word, std::string_view what, std::int64_t min,
                                 std::int64_t max) const {
  std::int64_t value = 0;
  const char* end = word.data() + word.size();
  const auto [stop, error] = std::from_chars(word.data(), end, value);
  if (stop != end || error == std::errc::invalid_argument) {
    fail(std::string(what) + " must be an integer, got " + quote_word(word));
  }
  const bool unbounded = min == std::numeric_limits<std::int64_t>::min() && max == std::numeric_limits<std::int64_t>::max();
  if (error == std::errc::result_out_of_range && unbounded) {  // the caller's own rule follows; this one is only the type's
    fail(std::string(what) + " does not fit a 64-bit integer, got " + quote_word(word));
  }
  if (error == std::errc::result_out_of_range || value < min || value > max) {
    fail(std::string(what) + " must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
         quote_word(word));
  }
  return value;
}

float LineReader::number(std::string_view word, std::string_view what) const {
  float value = 0.0f;
  const Parsed parsed = parse_float(word, value);
  if (parsed == Parsed::out_of_range) fail(std::string(what) + " is " + kOutOfRange + ", got " + quote_word(word));
  if (parsed == Parsed::not_a_number) fail(std::string(what) + " must be a number, got " + quote_word(word));
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

namespace {

// A name beside `path` that no other OutputFile of any process uses (the pid and a count), created
// exclusively with the permissions an ordinary file gets.
std::FILE* create_partial(const std::string& path, std::string& partial) {
  static std::atomic<std::uint64_t> count{0};
  partial = path + "." + std::to_string(::getpid()) + "." + std::to_string(count++) + ".partial";
  const int descriptor = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (descriptor < 0) return nullptr;
  std::FILE* file = ::fdopen(descriptor, "wb");
  if (file == nullptr) {
    const int failure = errno;
    ::close(descriptor);
    std::remove(partial.c_str());
    errno = failure;
  }
  return file;
}

}  // namespace

OutputFile::OutputFile(const std::string& path) : path_(path), file_(create_partial(path, partial_)) {
  if (file_ == nullptr) {
    throw Error(ErrorCode::invalid_argument, path + ": cannot open the file for writing (" + std::strerror(errno) + ")");
  }
  errno = 0;  // close() reads what a failed write left here
}

OutputFile::~OutputFile() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(partial_.c_str());
  }
}

void OutputFile::write(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() && write_failure_ == 0) write_failure_ = errno != 0 ? errno : EIO;
}

void OutputFile::close() {
  // fflush reports what the buffered writes hit (with errno); ferror that an earlier write failed,
  // whose reason write() kept or a writer's failed fprintf left in errno (a write larger than the
  // buffer goes out at once and fails there, leaving nothing for fflush to report).
  int failure = write_failure_;
  if (std::fflush(file_) != 0 && failure == 0) failure = errno;
  if (std::ferror(file_) != 0 && failure == 0) failure = errno != 0 ? errno : EIO;
  if (std::fclose(file_) != 0 && failure == 0) failure = errno;
  file_ = nullptr;
  if (failure != 0) {
    std::remove(partial_.c_str());
    throw Error(ErrorCode::invalid_argument, path_ + ": writing the file failed (" + std::strerror(failure) + ")");
  }
  if (std::rename(partial_.c_str(), path_.c_str()) != 0) {
    const int renamed = errno;
    std::remove(partial_.c_str());
    throw Error(ErrorCode::invalid_argument, path_ + ": cannot put the written file in place (" + std::strerror(renamed) + ")");
  }
}

void write_text_file(const std::string& path, std::string_view text) {
  OutputFile output(path);
  output.write(text);
  output.close();
}

void expect_writable(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode)) {  // the rename at the end would fail
    throw Error(ErrorCode::invalid_argument, path + ": is a directory; give a file name to write");
  }
  const OutputFile probe(path);
}

}  // namespace chunktree::harness
