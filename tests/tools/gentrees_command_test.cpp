// chunktree gentrees: usage errors. (The files it writes: tests/harness/tree_format_test.cpp.)
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "support/test_directory.hpp"

namespace chunktree::tools {
namespace {

TEST(TreeGentrees, RejectsBadArguments) {
  const std::filesystem::path directory = testing::fresh_test_directory("chunktree_gentrees");
  const std::string dir = directory.string();
  for (const std::vector<std::string_view>& args : std::vector<std::vector<std::string_view>>{
           {"--count", "0", dir}, {"--count"}, {"--colour", dir}, {dir, dir}, {"--seed", "x", dir}, {}}) {
    EXPECT_THROW(gentrees_command(args), Error);
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace chunktree::tools
