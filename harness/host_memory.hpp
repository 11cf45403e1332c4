// Host memory for the files `check` runs side by side (--jobs): what this process may still
// allocate, and one budget that the files in flight share, so that files that fit one at a time do
// not run the machine out of memory together.
#pragma once

#include <string>

namespace chunktree::harness {

// What this process may still allocate: MemAvailable, less where an address-space limit (ulimit -v)
// or the cgroup's memory.max leaves less; 0 where none of them says.
double available_host_bytes();

// `bytes` in GiB for a message, to three digits.
std::string gib_text(double bytes);

// A share of the host memory, held while one file is checked.
class HostMemoryReservation {
 public:
  // Waits until `bytes` fit beside the reservations of the files in flight (the budget is measured
  // when none is); throws ErrorCode::unsupported, naming `path`, with `parts` (what the bytes are)
  // where they would not fit beside none. Reserves nothing where the memory available is unknown.
  HostMemoryReservation(const std::string& path, double bytes, const std::string& parts);
  ~HostMemoryReservation();
  HostMemoryReservation(const HostMemoryReservation&) = delete;
  HostMemoryReservation& operator=(const HostMemoryReservation&) = delete;

 private:
  double bytes_ = 0.0;
};

}  // namespace chunktree::harness
