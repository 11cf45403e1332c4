// chunktree gentests: usage errors, found before anything is written. (The files it writes:
// tests/harness/seed_format_test.cpp, seq_first_format_test.cpp and the ctests
// cli.quick_grid_strict and cli.seq_first_quick_grid_strict.)
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"

namespace chunktree::tools {
namespace {

TEST(SeedGentests, UsageErrors) {
  const std::vector<std::string_view> none;
  EXPECT_THROW(gentests_command(none), Error);
  const std::vector<std::string_view> two_dirs{"a", "b"};
  EXPECT_THROW(gentests_command(two_dirs), Error);
  const std::vector<std::string_view> bad_jobs{"--jobs", "x", "dir"};
  EXPECT_THROW(gentests_command(bad_jobs), Error);
  const std::vector<std::string_view> seq_first_two_grids{"--seq-first", "--quick", "--full", "dir"};
  EXPECT_THROW(gentests_command(seq_first_two_grids), Error);
}

// Both grids asked for: an error before anything is written (it used to write the last one
// named, the full grid's 15 GB). The directory cannot be created, so nothing is written either way.
TEST(SeedGentests, QuickAndFullTogetherAreAnError) {
  using Args = std::vector<std::string_view>;
  for (const Args& args : {Args{"--quick", "--full", "/dev/null/grid"}, Args{"--full", "--quick", "/dev/null/grid"}}) {
    try {
      gentests_command(args);
      ADD_FAILURE() << "no error";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("--quick and --full contradict each other"), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace chunktree::tools
