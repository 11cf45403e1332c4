// The CPU backend's threads (src/cpu/parallel_for.hpp): every task runs once, and a task's
// exception on any thread reaches the caller (a worker's bad_alloc used to end the process).
#include "cpu/parallel_for.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

namespace chunktree::cpu {
namespace {

TEST(ParallelFor, RunsEveryTaskOnce) {
  for (const int threads : {1, 2, 8}) {
    std::vector<std::atomic<int>> runs(1000);
    parallel_for(runs.size(), threads, [&](std::size_t i) { ++runs[i]; });
    for (const auto& count : runs) ASSERT_EQ(count.load(), 1) << threads << " threads";
  }
}

TEST(ParallelFor, AWorkersExceptionReachesTheCaller) {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> thrown{0};
  EXPECT_THROW(parallel_for(10000, 4,
                            [&](std::size_t) {
                              // Every task on another thread throws: the caller's own share ends when they stop the handing out.
                              if (std::this_thread::get_id() != caller) {
                                ++thrown;
                                throw std::bad_alloc();
                              }
                              std::this_thread::yield();
                            }),
               std::bad_alloc);
  EXPECT_GE(thrown.load(), 1);
  EXPECT_THROW(parallel_for(8, 2, [](std::size_t i) { if (i == 5) throw std::runtime_error("task 5"); }), std::runtime_error);
}

}  // namespace
}  // namespace chunktree::cpu
