// One call at a time on an object whose calls share its state (a PagedAttention's plan, run and
// fingerprint): a call that overlaps another, from another thread (Python releases the GIL for
// them), is refused with an error instead of reading a plan that is being rewritten.
#pragma once

#include <atomic>
#include <string>

#include "chunktree/types.hpp"

namespace chunktree {

class ExclusiveCall {
 public:
  ExclusiveCall(std::atomic<bool>& busy, const char* who) : busy_(busy) {
    if (busy_.exchange(true, std::memory_order_acquire)) {
      throw Error(ErrorCode::invalid_argument, std::string(who) +
                                                   ": another call (plan, run or plan_fingerprint) is using this PagedAttention right "
                                                   "now; it serves one call at a time: give each thread its own, or wait for the call "
                                                   "to return");
    }
  }
  ~ExclusiveCall() { busy_.store(false, std::memory_order_release); }
  ExclusiveCall(const ExclusiveCall&) = delete;
  ExclusiveCall& operator=(const ExclusiveCall&) = delete;

 private:
  std::atomic<bool>& busy_;
};

}  // namespace chunktree
