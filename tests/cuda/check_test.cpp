// The test formats through the CUDA backend (label gpu): seed files' per-chunk partials and tree
// files, under the strict rules.
#include <gtest/gtest.h>

#include <filesystem>

#include "chunktree/device.hpp"
#include "harness/seed_format.hpp"
#include "harness/seq_first_format.hpp"
#include "harness/tree_format.hpp"

namespace chunktree::harness {
namespace {

std::string scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("chunktree_gpu_" + name);
  std::filesystem::create_directories(dir);
  return dir.string();
}

CheckOptions strict_on_cuda() {
  CheckOptions options;
  options.backend = Backend::cuda;
  options.strict = true;
  return options;
}

TEST(CudaCheck, SeedFilesOfOddShapesPassStrict) {
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible";
  const std::string dir = scratch_dir("seed");
  const CheckOptions options = strict_on_cuda();
  for (const SeedCase& seed_case : {SeedCase{"randn", {1, 1, 1}}, SeedCase{"large", {3, 5, 7}}, SeedCase{"positive", {33, 2, 3}},
                                    SeedCase{"small", {64, 3, 2}}, SeedCase{"uniform", {70, 1, 5}}}) {
    const std::string path = dir + "/" + seed_file_name(seed_case);
    write_seed_file(path, generate_seed_file(seed_case));
    const CheckResult result = check_seed_file(path, options);
    EXPECT_TRUE(result.passed) << path << ": fails " << result.fails << "/" << result.total << " max_diff " << result.max_diff;
  }
}

// Cut last chunks and shared states merged on the host with the kernel's states of the rest.
TEST(CudaCheck, SeqFirstFilesPassStrict) {
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible";
  const std::string dir = scratch_dir("seq_first");
  const CheckOptions options = strict_on_cuda();
  for (const SeqFirstCase& seq_case : {SeqFirstCase{"randn", {1, 1, 1}, 0, 16}, SeqFirstCase{"large", {3, 5, 7}, 3, 400},
                                       SeqFirstCase{"small", {33, 2, 4}, 4, 250}, SeqFirstCase{"positive", {16, 8, 8}, 0, 449}}) {
    const std::string path = dir + "/" + seq_first_file_name(seq_case);
    write_seq_first_file(path, generate_seq_first_file(seq_case));
    const CheckResult result = check_seed_file(path, options);
    EXPECT_TRUE(result.passed) << path << ": fails " << result.fails << "/" << result.total << " max_diff " << result.max_diff;
    EXPECT_TRUE(result.summary_note.empty()) << "generated inputs are bf16: nothing to round";
  }
}

TEST(CudaCheck, GeneratedTreesPassStrict) {
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible";
  const std::string dir = scratch_dir("tree");
  const CheckOptions options = strict_on_cuda();
  for (int index = 0; index < 24; ++index) {
    const std::string path = dir + "/" + tree_file_name(5, index);
    write_tree_file(path, generate_tree_workload(5, index, 0, /*allow_f32=*/false));
    const CheckResult result = check_tree_file(path, options);
    EXPECT_TRUE(result.passed) << path << ": fails " << result.fails << "/" << result.total << " max_diff " << result.max_diff;
  }
}

}  // namespace
}  // namespace chunktree::harness
