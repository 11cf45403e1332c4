// Capping this process's address space (RLIMIT_AS) to run out of memory on purpose, in a death
// test's child; AddressSanitizer reserves terabytes of address space, so such tests skip there.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "chunktree/types.hpp"

namespace chunktree::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// Caps the address space at what is in use plus `headroom` bytes; false if it could not.
inline bool cap_address_space(std::size_t headroom) {
  long pages = 0;
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  const bool read = statm != nullptr && std::fscanf(statm, "%ld", &pages) == 1;
  if (statm != nullptr) std::fclose(statm);
  if (!read) return false;
  const rlim_t cap = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + headroom;
  const rlimit limit{cap, cap};
  return ::setrlimit(RLIMIT_AS, &limit) == 0;
}

// In a death test's child: caps the address space at `headroom` bytes above what is in use, runs
// `call`, prints what happened on stderr, runs `clean_up` (the child ran the test from its start,
// threadsafe style, and no TearDown of it runs) and exits 0 if `call` threw a chunktree::Error of
// code `expected`, 2 if the cap could not be set, else 1.
template <typename Call, typename CleanUp>
[[noreturn]] void exit_with_little_memory(std::size_t headroom, ErrorCode expected, Call call, CleanUp clean_up) {
  int code = 2;
  if (cap_address_space(headroom)) {
    code = 1;
    try {
      call();
      std::fputs("ran without an error", stderr);
    } catch (const Error& error) {
      std::fputs(error.what(), stderr);
      if (error.code() == expected) code = 0;
    } catch (const std::exception& error) {
      std::fputs(error.what(), stderr);
    }
  }
  clean_up();
  std::_Exit(code);
}

}  // namespace chunktree::testing
