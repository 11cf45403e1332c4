// A program outside the project that finds the installed chunktree with find_package.
#include <chunktree/chunktree.hpp>

#include <cstdio>
#include <vector>

int main() {
  chunktree::PrefixCache cache(chunktree::CacheConfig{});
  cache.add(std::vector<chunktree::Token>{1, 2, 3});
  const chunktree::AddResult second = cache.add(std::vector<chunktree::Token>{1, 2, 4});
  std::printf("cached %lld of 3 tokens\n", static_cast<long long>(second.cached_tokens));
  return second.cached_tokens == 2 ? 0 : 1;
}
