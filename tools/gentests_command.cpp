// chunktree gentests: writes the seed project's grid of seed-format files (docs/FORMATS.md,
// "Seed format") into a directory, several files at once.
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/seed_format.hpp"
#include "options.hpp"
#include "parallel.hpp"

namespace chunktree::tools {
namespace {

void print_gentests_usage(std::FILE* stream) {
  std::fprintf(stream,
               "usage: chunktree gentests [--quick|--full] [--jobs N] DIR\n"
               "Writes the seed project's chunk-first test files into DIR (created if missing).\n"
               "  --quick   36 files: randn, small x s 8,16,32 x h 1,4 x c 1,2,4 (the default)\n"
               "  --full    1680 files: randn, small, uniform, large, positive x s 1..32 x h 1..16 x c 1..16 (~15 GB)\n"
               "  --jobs N  files written at once (default: one per hardware thread)\n");
}

struct GentestsArgs {
  std::string_view grid;  // --quick or --full, empty: the default (quick)
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

  const std::vector<harness::SeedCase> cases = harness::seed_grid(parsed.grid == "--full");
  std::vector<double> weights;
  for (const harness::SeedCase& seed_case : cases) weights.push_back(harness::seed_file_values(seed_case.shape));
  run_in_order(
      cases.size(), parsed.jobs, "gentests", weights,
      [&](std::size_t i) {
        const std::filesystem::path path = std::filesystem::path(parsed.dir) / harness::seed_file_name(cases[i]);
        harness::write_seed_file(path.string(), harness::generate_seed_file(cases[i]));
      },
      nullptr);
  std::printf("gentests: wrote %zu files to %s\n", cases.size(), parsed.dir.c_str());
  return 0;
}

}  // namespace chunktree::tools
