// chunktree check: runs seed- and tree-format files through a backend and prints one block per
// file, in the order the files were given, whatever --jobs is.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/check.hpp"
#include "harness/text_arrays.hpp"
#include "options.hpp"
#include "parallel.hpp"

namespace chunktree::tools {
namespace {

void print_check_usage(std::FILE* stream) {
  std::fprintf(stream,
               "usage: chunktree check FILE... [--backend cpu|cuda|auto] [--strict] [-v] [--jobs N] [--dump DIR]\n"
               "Checks seed-format files (chunk-first or sequence-first) or tree-format files (docs/FORMATS.md)\n"
               "against a backend. Prints 'PASSED FILE' or 'FAILED FILE' and a SUMMARY line per file; exits 0\n"
               "when every file passes, 1 otherwise. Seed-format inputs that the backend's cache rounds (bf16 on\n"
               "cuda) are reported, and the kernel is judged against fp64 on the rounded inputs.\n"
               "  --backend B  cpu, cuda or auto (default cpu)\n"
               "  --strict     per-chunk relative norms instead of the seed's element-wise rule\n"
               "  -v           per-chunk details of every array\n"
               "  --jobs N     files checked at once (default: one per hardware thread)\n"
               "  --dump DIR   write each file with the computed values in place of the expected ones, as\n"
               "               DIR/<its file name> (files of one name from several folders: one run each)\n");
}

struct CheckArgs {
  std::vector<std::string> files;
  harness::CheckOptions options;
  std::string dump_dir;  // empty: no dumps
  int jobs = 0;
  bool help = false;
};

CheckArgs parse_check_args(Args args) {
  CheckArgs parsed;
  parsed.jobs = default_jobs();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view word = args[i];
    if (word == "--help" || word == "-h") {
      parsed.help = true;
    } else if (word == "--backend") {
      parsed.options.backend = select_backend(option_value("check", args, i));  // cuda: "not available", exit 2
    } else if (word == "--strict") {
      parsed.options.strict = true;
    } else if (word == "-v" || word == "--verbose") {
      parsed.options.verbose = true;
    } else if (word == "--jobs") {
      parsed.jobs = static_cast<int>(integer_option("--jobs", option_value("check", args, i), 1, 4096));
    } else if (word == "--dump") {
      parsed.dump_dir = option_value("check", args, i);
      if (parsed.dump_dir.empty()) throw Error(ErrorCode::invalid_argument, "check: --dump needs a directory, got an empty word");
    } else if (word.starts_with("-")) {
      throw Error(ErrorCode::invalid_argument, "check: unknown option '" + std::string(word) + "'; see 'chunktree check --help'");
    } else {
      parsed.files.emplace_back(word);
    }
  }
  if (!parsed.help && parsed.files.empty()) throw Error(ErrorCode::invalid_argument, "check: no FILE given; see 'chunktree check --help'");
  return parsed;
}

// A file's result, or why it could not be checked (a malformed file, an unwritable dump).
struct FileOutcome {
  harness::CheckResult result;
  std::string error;
};

// The (device, inode) of an existing file, so that a path is recognised whatever the spelling or
// the links that lead to it.
std::optional<std::pair<dev_t, ino_t>> file_identity(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  return std::pair{status.st_dev, status.st_ino};
}

// Where each file's dump goes: DIR/<its file name>, worked out for all files before any is
// checked. Two files that would share a dump (one lost, or both interleaved into one file under
// --jobs) or a dump that would overwrite an input are usage errors, found before anything is
// written.
std::vector<std::string> dump_paths(const std::vector<std::string>& files, const std::string& dir) {
  namespace fs = std::filesystem;
  std::set<std::pair<dev_t, ino_t>> inputs;
  for (const std::string& file : files) {
    if (const auto identity = file_identity(file)) inputs.insert(*identity);
  }
  std::map<fs::path, const std::string*> file_of_name;
  std::vector<std::string> targets;
  for (const std::string& file : files) {
    const fs::path name = fs::path(file).filename();
    if (name.empty() || name == "." || name == "..") {
      throw Error(ErrorCode::invalid_argument, "check: --dump: '" + file + "' has no file name to name its dump after");
    }
    targets.push_back((fs::path(dir) / name).string());
    const auto [first, unique] = file_of_name.emplace(name, &file);
    if (!unique) {
      throw Error(ErrorCode::invalid_argument, "check: --dump: '" + *first->second + "' and '" + file +
                                                   "' would both be dumped to '" + targets.back() +
                                                   "'; check them in separate runs with different --dump directories");
    }
    const auto existing = file_identity(targets.back());
    if (existing && inputs.contains(*existing)) {
      throw Error(ErrorCode::invalid_argument, "check: --dump: '" + targets.back() +
                                                   "' is an input file, which the dump would overwrite; dump "
                                                   "into another directory");
    }
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    throw Error(ErrorCode::invalid_argument, "check: --dump: cannot create '" + dir + "' (" + error.message() + ")");
  }
  return targets;
}

FileOutcome check_file(const std::string& path, const harness::CheckOptions& options) {
  FileOutcome outcome;
  try {
    if (harness::input_file_head(path, 3) == "\xEF\xBB\xBF") {  // an editor's mark, which no header starts with
      throw Error(ErrorCode::format, path + ":1: the file starts with a UTF-8 byte-order mark; save it without one (plain ASCII)");
    }
    outcome.result = harness::is_tree_file(path) ? harness::check_tree_file(path, options) : harness::check_seed_file(path, options);
  } catch (const Error& error) {
    outcome.error = error.what();
  } catch (const std::bad_alloc&) {  // the file's workload needs more host memory than there is: its own failure, not the run's
    outcome.error = path + ": not enough host memory to check this file (its cache, states or reference need more than is free)";
  }
  return outcome;
}

// A file that could not be checked still gets its block, so that every file has the same two
// lines to parse: it counts as one failed comparison with max_diff nan.
void print_outcome(const std::string& path, const FileOutcome& outcome) {
  if (!outcome.error.empty()) {
    std::fflush(stdout);  // keeps the message next to its block when both streams go to one place
    std::fprintf(stderr, "chunktree check: %s\n", harness::printable_text(outcome.error, /*keep_utf8=*/true).c_str());
  }
  const harness::CheckResult& result = outcome.result;
  const bool passed = outcome.error.empty() && result.passed;
  std::printf("%s %s\n", passed ? "PASSED" : "FAILED", harness::printable_text(path).c_str());  // one line, whatever the name holds
  std::fputs(result.details.c_str(), stdout);
  if (outcome.error.empty()) {
    const double percent = result.total > 0 ? 100.0 * static_cast<double>(result.fails) / static_cast<double>(result.total) : 0.0;
    std::printf("SUMMARY: fails=%lld/%lld (%.2f%%) max_diff=%.6g%s%s\n", static_cast<long long>(result.fails),
                static_cast<long long>(result.total), percent, result.max_diff, result.summary_note.empty() ? "" : " ",
                result.summary_note.c_str());
  } else {
    std::printf("SUMMARY: fails=1/1 (100.00%%) max_diff=nan\n");
  }
}

// Files on disk, for the ETA: checking time grows with the text to parse.
std::vector<double> file_sizes(const std::vector<std::string>& files) {
  std::vector<double> sizes;
  for (const std::string& file : files) {
    std::error_code error;
    const auto size = std::filesystem::file_size(file, error);
    sizes.push_back(error ? 1.0 : static_cast<double>(size) + 1.0);
  }
  return sizes;
}

}  // namespace

int check_command(Args args) {
  CheckArgs parsed = parse_check_args(args);
  if (parsed.help) {
    print_check_usage(stdout);
    return 0;
  }
  // Files run side by side already; each backend call gets its share of the hardware threads.
  parsed.options.threads = std::max(1, default_jobs() / parsed.jobs);
  const std::vector<std::string> dumps = parsed.dump_dir.empty() ? std::vector<std::string>(parsed.files.size())
                                                                 : dump_paths(parsed.files, parsed.dump_dir);
  std::vector<FileOutcome> outcomes(parsed.files.size());
  std::size_t failed = 0;
  run_in_order(
      parsed.files.size(), parsed.jobs, "check", file_sizes(parsed.files),
      [&](std::size_t i) {
        harness::CheckOptions options = parsed.options;
        options.dump_path = dumps[i];
        outcomes[i] = check_file(parsed.files[i], options);
      },
      [&](std::size_t i) {
        print_outcome(parsed.files[i], outcomes[i]);
        if (!outcomes[i].error.empty() || !outcomes[i].result.passed) failed += 1;
        outcomes[i] = FileOutcome{};  // -v details can be long; keep only what is still to print
      });
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}

}  // namespace chunktree::tools
