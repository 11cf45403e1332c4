// chunktree gentests: writes the seed project's grid of seed-format files (docs/FORMATS.md,
// "Seed format", or with --seq-first "Sequence-first format") into a directory, several files at once.
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/seed_format.hpp"
#include "harness/seq_first_format.hpp"
#include "options.hpp"
#include "parallel.hpp"

namespace chunktree::tools {
namespace {

void print_gentests_usage(std::FILE* stream) {
  std::fprintf(stream,
               "usage: chunktree gentests [--seq-first] [--quick|--full] [--jobs N] DIR\n"
               "Writes the seed project's test files (chunk-first, or sequence-first with --seq-first) into DIR (created if missing).\n"
               "  --quick      36 files: randn, small x s 8,16,32 x h 1,4 x c 1,2,4 (the default)\n"
               "  --full       1680 files: randn, small, uniform, large, positive x s 1..32 x h 1..16 x c 1..16 (~15 GB)\n"
               "  --seq-first  sequence-first files instead; quick: 64 files, small, randn x s 1,4 x h 1,4 x c 2,4\n"
               "               x shared 0,c/2 x last chunk 64,32 tokens; full: 2800 files, the five patterns\n"
               "               x s 1..16 x h 1..8 x c 1..8 x shared 0,c/2 x last chunk 64,48,32,16 tokens\n"
               "  --jobs N     files written at once (default: one per hardware thread)\n");
}

struct GentestsArgs {
  std::string_view grid;  // --quick or --full, empty: the default (quick)
  bool seq_first = false;
  int jobs = 0;
  std::string dir;
  bool help = false;
};

GentestsArgs parse_gentests_args(Args args) {
  GentestsArgs parsed;
  parsed.jobs = default_jobs();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view word = args[i];
    if (word == "--help" || word == "-h") {
      parsed.help = true;
    } else if (word == "--quick" || word == "--full") {
      if (!parsed.grid.empty() && parsed.grid != word) {
        throw Error(ErrorCode::invalid_argument, "gentests: --quick and --full contradict each other; give one of them");
      }
      parsed.grid = word;
    } else if (word == "--seq-first") {
      parsed.seq_first = true;
    } else if (word == "--jobs") {
      parsed.jobs = static_cast<int>(integer_option("--jobs", option_value("gentests", args, i), 1, 4096));
    } else if (word.starts_with("-")) {
      throw Error(ErrorCode::invalid_argument, "gentests: unknown option '" + std::string(word) + "'; see 'chunktree gentests --help'");
    } else if (!parsed.dir.empty()) {
      throw Error(ErrorCode::invalid_argument, "gentests: give one DIR, got '" + parsed.dir + "' and '" + std::string(word) + "'");
    } else {
      parsed.dir = word;
    }
  }
  if (!parsed.help && parsed.dir.empty()) throw Error(ErrorCode::invalid_argument, "gentests: missing DIR; see 'chunktree gentests --help'");
  return parsed;
}

// Writes every case of a grid as DIR/name(case), `jobs` at once; returns the number of files.
template <typename Case, typename Generate>
std::size_t write_grid(const GentestsArgs& parsed, const std::vector<Case>& cases, double (*values)(const Case&),
                       std::string (*name)(const Case&), Generate generate_and_write) {
  std::vector<double> weights;
  for (const Case& one : cases) weights.push_back(values(one));
  run_in_order(
      cases.size(), parsed.jobs, "gentests", weights,
      [&](std::size_t i) { generate_and_write((std::filesystem::path(parsed.dir) / name(cases[i])).string(), cases[i]); },
      nullptr);
  return cases.size();
}

std::size_t write_chunk_first_grid(const GentestsArgs& parsed) {
  return write_grid(
      parsed, harness::seed_grid(parsed.grid == "--full"),
      +[](const harness::SeedCase& one) { return harness::seed_file_values(one.shape); }, &harness::seed_file_name,
      [](const std::string& path, const harness::SeedCase& one) { harness::write_seed_file(path, harness::generate_seed_file(one)); });
}

std::size_t write_seq_first_grid(const GentestsArgs& parsed) {
  return write_grid(parsed, harness::seq_first_grid(parsed.grid == "--full"), &harness::seq_first_file_values,
                    &harness::seq_first_file_name, [](const std::string& path, const harness::SeqFirstCase& one) {
                      harness::write_seq_first_file(path, harness::generate_seq_first_file(one));
                    });
}

}  // namespace

int gentests_command(Args args) {
  const GentestsArgs parsed = parse_gentests_args(args);
  if (parsed.help) {
    print_gentests_usage(stdout);
    return 0;
  }
  std::error_code error;
  std::filesystem::create_directories(parsed.dir, error);
  if (error) throw Error(ErrorCode::invalid_argument, "gentests: cannot create '" + parsed.dir + "': " + error.message());

  const std::size_t count = parsed.seq_first ? write_seq_first_grid(parsed) : write_chunk_first_grid(parsed);
  std::printf("gentests: wrote %zu files to %s\n", count, parsed.dir.c_str());
  return 0;
}

}  // namespace chunktree::tools
