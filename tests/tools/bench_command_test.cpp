// chunktree bench --plan-splits: the cost model's split of every case's two plans, on the CPU, as the
// committed runs' `split` and `items` notes read (a change of the model is checked by the rows it
// re-plans before any device run), and its usage errors; the output files of bench and host-bench.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/types.hpp"
#include "commands.hpp"
#include "harness/text_arrays.hpp"
#include "support/expect_error.hpp"
#include "support/test_directory.hpp"

namespace chunktree::tools {
namespace {

std::string plan_splits(const std::vector<std::string_view>& args) {
  ::testing::internal::CaptureStdout();
  const int code = bench_command(args);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  return out;
}

// The H200 rows of a fully shared 1K prompt (experiment 60: 128 tiles, one per SM) and of the same
// sequences read separately (1024 whole tiles), as session 28's committed run noted them.
TEST(BenchPlanSplits, PresetRowsAsTheRunNotesThem) {
  const std::string out = plan_splits({"--preset", "chunkattn-t3", "--plan-splits", "132"});
  EXPECT_EQ(out.rfind("preset,case,impl,split,items\n", 0), 0u) << out;
  EXPECT_NE(out.find("\nchunkattn-t3,np1024_ns1024,chunktree,256,4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nchunkattn-t3,np1024_ns1024,chunktree-noshare,0,32\n"), std::string::npos) << out;
}

// A custom shape too: one 8K prompt of 4 kv heads for a single sequence is cut to fill the GPU,
// and a GPU of twice the SMs never gets fewer items.
TEST(BenchPlanSplits, CustomShapeAndSmCount) {
  const auto items = [](const std::string& out) {
    const std::size_t row = out.find("\ncustom,custom,chunktree,");
    return std::stoi(out.substr(out.rfind(',', out.find('\n', row + 1)) + 1));
  };
  const std::string h200 = plan_splits({"--batch", "1", "--heads", "32", "--kv-heads", "4", "--suffix", "8192", "--plan-splits", "132"});
  const std::string twice = plan_splits({"--batch", "1", "--heads", "32", "--kv-heads", "4", "--suffix", "8192", "--plan-splits", "264"});
  EXPECT_GT(items(h200), 1) << h200;
  EXPECT_GE(items(twice), items(h200)) << twice;
}

TEST(BenchPlanSplits, UsageErrors) {
  EXPECT_THROW(bench_command(std::vector<std::string_view>{"--plan-splits", "0"}), Error);
  EXPECT_THROW(bench_command(std::vector<std::string_view>{"--plan-splits", "x"}), Error);
  EXPECT_THROW(bench_command(std::vector<std::string_view>{"--plan-splits"}), Error);
  // Timing options mean nothing to it: an error, not silently ignored.
  EXPECT_THROW(bench_command(std::vector<std::string_view>{"--plan-splits", "132", "--split", "512"}), Error);
  EXPECT_THROW(bench_command(std::vector<std::string_view>{"--plan-splits", "132", "--csv", "/tmp/x.csv"}), Error);
}

// The read reference times reads of GPU memory: on the CPU backend an error that says so, not CPU
// timings under its name; beside --plan-splits, which times nothing, or --split, an error too.
TEST(BenchReadReference, NeedsAGpu) {
  chunktree::testing::expect_error(
      [] { bench_command(std::vector<std::string_view>{"--read-reference", "--backend", "cpu", "--preset", "small"}); },
      ErrorCode::invalid_argument, "--read-reference times reads of GPU memory and needs a GPU");
  EXPECT_THROW(bench_command(std::vector<std::string_view>{"--read-reference", "--plan-splits", "132"}), Error);
  // Options it has no use for are refused, not ignored.
  chunktree::testing::expect_error([] { bench_command(std::vector<std::string_view>{"--read-reference", "--split", "64"}); },
                                   ErrorCode::invalid_argument, "it plans nothing (no --split)");
}

// Output paths are checked before anything is timed: two outputs of one path, and a path that
// cannot be written, are refused at once (the run never starts: nothing is printed). A run that
// writes puts its file in place and leaves no partial one beside it.
TEST(BenchOutputs, RefusedBeforeTheRunAndWrittenWhole) {
  const std::filesystem::path dir = chunktree::testing::fresh_test_directory("chunktree_bench");
  const std::string csv = (dir / "rows.csv").string();
  const std::string same = "./" + std::filesystem::relative(dir / "rows.csv").string();  // relative, and not yet a file
  const std::vector<std::string_view> small_case{"--backend", "cpu", "--batch", "2", "--prefix", "64", "--suffix", "4", "--repeats", "1", "--settle-ms", "0"};
  const auto with = [&](std::vector<std::string_view> extra) {
    std::vector<std::string_view> args = small_case;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  chunktree::testing::expect_error([&] { bench_command(with({"--csv", csv, "--json", same})); }, ErrorCode::invalid_argument,
                                   "bench: --csv and --json name one file");
  const std::string missing = (dir / "no_such_dir" / "rows.csv").string();
  ::testing::internal::CaptureStdout();
  chunktree::testing::expect_error([&] { bench_command(with({"--csv", missing})); }, ErrorCode::invalid_argument,
                                   missing + ": cannot open the file for writing (No such file or directory)");
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  chunktree::testing::expect_error([&] { host_bench_command(std::vector<std::string_view>{"--backend", "cpu", "--csv", missing}); },
                                   ErrorCode::invalid_argument, missing + ": cannot open the file for writing");

  ::testing::internal::CaptureStdout();
  EXPECT_EQ(bench_command(with({"--csv", csv})), 0);
  ::testing::internal::GetCapturedStdout();
  std::stringstream text;
  text << std::ifstream(csv).rdbuf();
  EXPECT_EQ(text.str().rfind("preset,case,impl,", 0), 0u) << text.str();
  EXPECT_NE(text.str().find("\ncustom,custom,chunktree,"), std::string::npos) << text.str();
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{}), 1);  // no .partial left
  chunktree::testing::expect_error([&] { bench_command(with({"--csv", dir.string()})); }, ErrorCode::invalid_argument,
                                   dir.string() + ": is a directory");
  harness::expect_writable((dir / "probe.csv").string());  // a check leaves nothing behind
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{}), 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chunktree::tools
