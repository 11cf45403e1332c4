// chunktree gentrees [--count N] [--seed S] [--sequences M] [--gpu-dtypes] DIR: random tree-format
// files (docs/FORMATS.md, "Tree format") with their expected values.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/text_arrays.hpp"
#include "harness/tree_format.hpp"
#include "options.hpp"

namespace chunktree::tools {
namespace {

// Creates `dir` and its parents if missing, reporting failure as a chunktree::Error.
void make_directories(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw Error(ErrorCode::invalid_argument, dir + ": cannot create the directory (" + error.message() + ")");
}

// Large workloads take up to ~0.8 MB of text per sequence (16 query tokens of 2048 values, each
// with its expected output), so files stay below the size limit for test files
// (kMaxInputFileBytes, 2 GiB).
constexpr int kMaxLargeSequences = 2'000;

struct GentreesOptions {
  int count = 24;
  std::uint64_t seed = 1;
  int sequences = 0;
  bool gpu_dtypes = false;  // bf16 and f16 only: files the CUDA backend can run
  std::string dir;
  bool help = false;
};

constexpr const char* kGentreesUsage =
    "usage: chunktree gentrees [--count N] [--seed S] [--sequences M] [--gpu-dtypes] DIR\n"
    "  Writes N (default 24) random tree-format files tree_<S>_<index>.txt into DIR (created if\n"
    "  missing): random prefix trees, shapes and dtypes, with expected outputs from the fp64\n"
    "  reference. --seed S (default 1) picks the random stream. --sequences M makes large\n"
    "  workloads of at least M (at most 2000) sequences each (short private parts under a small\n"
    "  shared tree).\n"
    "  --gpu-dtypes leaves out f32 K/V (which only the cpu backend runs).\n"
    "  The format is in docs/FORMATS.md, 'Tree format'.\n";

GentreesOptions parse_gentrees(Args args) {
  GentreesOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view word = args[i];
    if (word == "--help" || word == "-h") {
      options.help = true;
    } else if (word == "--gpu-dtypes") {
      options.gpu_dtypes = true;
    } else if (word == "--count" || word == "--seed" || word == "--sequences") {
      const std::string_view value = option_value("gentrees", args, i);
      if (word == "--count") options.count = static_cast<int>(integer_option(word, value, 1, 100'000));
      if (word == "--seed")
        options.seed =
            static_cast<std::uint64_t>(integer_option(word, value, 0, std::numeric_limits<std::int64_t>::max()));
      if (word == "--sequences")
        options.sequences = static_cast<int>(integer_option(word, value, 1, kMaxLargeSequences));
    } else if (word.starts_with("-")) {
      throw Error(ErrorCode::invalid_argument, "gentrees: unknown option " + harness::quote_word(word) + "\n" + kGentreesUsage);
    } else if (options.dir.empty()) {
      options.dir = word;
    } else {
      throw Error(ErrorCode::invalid_argument,
                  "gentrees: takes one output DIR, got " + harness::quote_word(options.dir) + " and " + harness::quote_word(word));
    }
  }
  if (options.dir.empty() && !options.help)
    throw Error(ErrorCode::invalid_argument, std::string("gentrees: no output DIR\n") + kGentreesUsage);
  return options;
}

}  // namespace

int gentrees_command(Args args) {
  const GentreesOptions options = parse_gentrees(args);
  if (options.help) {
    std::fputs(kGentreesUsage, stdout);
    return 0;
  }
  make_directories(options.dir);
  for (int index = 0; index < options.count; ++index) {
    const std::string path = (std::filesystem::path(options.dir) / harness::tree_file_name(options.seed, index)).string();
    harness::write_tree_file(path, harness::generate_tree_workload(options.seed, index, options.sequences, !options.gpu_dtypes));
  }
  std::printf("gentrees: wrote %d files %s .. %s to %s\n", options.count, harness::tree_file_name(options.seed, 0).c_str(),
              harness::tree_file_name(options.seed, options.count - 1).c_str(), options.dir.c_str());
  return 0;
}

}  // namespace chunktree::tools
