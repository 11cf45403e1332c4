// The CPU backend's threads (src/cpu/parallel_for.hpp): every task runs once, and a task's
// exception on any thread reaches the caller (a worker's bad_alloc used to end the process).
#include "cpu/parallel_for.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  EXPECT_THROW(parallel_for(10000, 4,
                            [&](std::size_t) {
                              // Every task on another thread throws: the caller's own share ends when they stop the handing out.
                              if (std::this_thread::get_id() != caller) {
                                ++thrown;
                                throw std::bad_alloc();
                              }
                              // The caller's task waits for a worker's throw: on a loaded machine (2 cores, a sanitizer
                              // build) it could otherwise run all 10000 tasks before any worker was scheduled.
                              while (thrown.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
                            }),
               std::bad_alloc);
  EXPECT_GE(thrown.load(), 1);
  EXPECT_THROW(parallel_for(8, 2, [](std::size_t i) { if (i == 5) throw std::runtime_error("task 5"); }), std::runtime_error);
}

}  // namespace
}  // namespace chunktree::cpu
