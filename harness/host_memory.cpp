#include "harness/host_memory.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "chunktree/types.hpp"

namespace chunktree::harness {
namespace {

// The first number a file holds, or a negative number where it holds none ("max" in memory.max).
double number_in(const char* path) {
  double value = -1.0;
  if (std::FILE* file = std::fopen(path, "r")) {
    if (std::fscanf(file, "%lf", &value) != 1) value = -1.0;
    std::fclose(file);
  }
  return value;
}

// What the cgroup (v2, else v1) lets this process's group still take, or a negative number.
double cgroup_room() {
  const double limit_v2 = number_in("/sys/fs/cgroup/memory.max");
  if (limit_v2 >= 0.0) return limit_v2 - std::max(number_in("/sys/fs/cgroup/memory.current"), 0.0);
  const double limit_v1 = number_in("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (limit_v1 >= 0.0 && limit_v1 < 1e18) return limit_v1 - std::max(number_in("/sys/fs/cgroup/memory/memory.usage_in_bytes"), 0.0);
  return -1.0;
}

// The files in flight: what they reserved, out of the budget measured when none was.
std::mutex budget_mutex;
std::condition_variable budget_freed;
double budget_reserved = 0.0;
double budget_total = 0.0;

}  // namespace

std::string gib_text(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", bytes / double(1 << 30));
  return text;
}

double available_host_bytes() {
  double available = 0.0;
  if (std::FILE* meminfo = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    double kib = 0.0;
    while (std::fgets(line, sizeof line, meminfo) != nullptr) {
      if (std::sscanf(line, "MemAvailable: %lf kB", &kib) == 1) break;
    }
    std::fclose(meminfo);
    available = kib * 1024.0;
  }
  const auto at_most = [&](double room) { available = std::max(available > 0.0 ? std::min(available, room) : room, 1.0); };  // 1: none left
  const double cgroup = cgroup_room();
  if (cgroup >= 0.0) at_most(cgroup);
  rlimit limit{};
  const double pages = number_in("/proc/self/statm");
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && pages >= 0.0) {
    at_most(static_cast<double>(limit.rlim_cur) - pages * static_cast<double>(::sysconf(_SC_PAGESIZE)));
  }
  return available;
}

HostMemoryReservation::HostMemoryReservation(const std::string& path, double bytes, const std::string& parts) {
  std::unique_lock lock(budget_mutex);
  for (;;) {
    if (budget_reserved == 0.0) budget_total = available_host_bytes();  // nothing of ours allocated: measure afresh
    if (budget_total == 0.0) return;
    if (bytes > budget_total) {
      throw Error(ErrorCode::unsupported, path + ": checking this file on the cpu backend needs up to " + gib_text(bytes) + " GiB of host memory (" + parts +
                                              "), more than the " + gib_text(budget_total) + " GiB available; check it on a larger machine or cut the tree");
    }
    if (budget_reserved + bytes <= budget_total) break;
    budget_freed.wait(lock);  // another file's check is running: wait for its memory
  }
  budget_reserved += bytes;
  bytes_ = bytes;
}

HostMemoryReservation::~HostMemoryReservation() {
  if (bytes_ == 0.0) return;
  {
    const std::lock_guard lock(budget_mutex);
    budget_reserved -= bytes_;
    if (budget_reserved < 1.0) budget_reserved = 0.0;  // sums of doubles: none left in flight
  }
  budget_freed.notify_all();
}

}  // namespace chunktree::harness
