// Whether this build runs under AddressSanitizer, which reserves terabytes of address space: a
// test that caps the address space (RLIMIT_AS) to run out of memory on purpose cannot run there.
#pragma once

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

}  // namespace chunktree::testing
