// The CPU backend's one way of running work on several threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace chunktree::cpu {

// Runs task(i) for i in [0, count) on up to `threads` threads. The first exception a task throws
// (a bad_alloc on a worker too) stops the handing out of tasks and reaches the caller once every
// thread has stopped; a thread that cannot be started leaves its share to the others.
template <typename Task>
void parallel_for(std::size_t count, int threads, const Task& task) {
  const std::size_t workers = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(1, threads)));
  if (workers <= 1) {
    for (std::size_t i = 0; i < count; ++i) task(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_lock;
  auto work = [&]() noexcept {
    try {
      for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) task(i);
    } catch (...) {
      next = count;
      const std::lock_guard lock(failure_lock);
      if (!failure) failure = std::current_exception();
    }
  };
  {
    std::vector<std::jthread> pool;
    try {
      pool.reserve(workers - 1);
      for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work);
    } catch (const std::exception&) {  // bad_alloc or system_error: run on the threads there are
    }
    work();
  }  // joins
  if (failure) std::rethrow_exception(failure);
}

}  // namespace chunktree::cpu
