// The prefix cache's mutations under std::bad_alloc: each allocates all it will before its first
// change, so that a bad_alloc anywhere leaves the cache as it was, and the same call then succeeds.
// Its own test binary: it replaces the global operator new with one that fails the n-th allocation
// after being armed, and tries every n until the call goes through.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <functional>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "chunktree/prefix_cache.hpp"
#include "support/cache_snapshot.hpp"

namespace {

long allocations_left = -1;  // -1: never fail; else allocations before the one that fails

}  // namespace

void* operator new(std::size_t bytes) {
  if (allocations_left >= 0 && allocations_left-- == 0) throw std::bad_alloc();
  if (void* memory = std::malloc(bytes == 0 ? 1 : bytes)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t bytes) { return operator new(bytes); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }

namespace chunktree {
namespace {

std::vector<Token> tokens_from(Token first, int count) {
  std::vector<Token> tokens(static_cast<std::size_t>(count));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// A cache of chunks of 16 tokens and the sequences a case reads back.
struct Cache {
  PrefixCache cache{[] {
    CacheConfig config;
    config.num_kv_heads = 1;
    config.head_dim = 64;
    config.chunk_size = 16;
    config.capacity_chunks = 64;
    return config;
  }()};
  std::vector<SeqId> seqs = [] {
    std::vector<SeqId> room;
    room.reserve(1024);  // so that a case's own push_back never fails after the cache's call went through
    return room;
  }();
};

// For n = 0, 1, ...: a fresh cache from `setup`, `call` with the n-th allocation failing. Every
// failed call must leave the cache unchanged and be followed by the same call succeeding with the
// result of a call that never failed; the last n is the one where `call` allocated no more (and,
// where `allocates`, there was a first).
// The cache as `expected` holds it, versions aside (a cache's versions are its own).
bool same_as(const PrefixCache& cache, const std::vector<SeqId>& seqs, const testing::CacheSnapshot& expected) {
  testing::CacheSnapshot got(cache, seqs);
  got.version = expected.version;
  return got == expected;
}

void expect_strong_under_bad_alloc(const std::function<void(Cache&)>& setup, const std::function<void(Cache&)>& call,
                                   bool allocates = true) {
  Cache reference;
  setup(reference);
  call(reference);
  const testing::CacheSnapshot expected(reference.cache, reference.seqs);
  int failures = 0;
  for (long n = 0;; ++n) {
    SCOPED_TRACE("allocation " + std::to_string(n) + " fails");
    Cache c;
    setup(c);
    const testing::CacheSnapshot before(c.cache, c.seqs);
    bool failed = false;
    allocations_left = n;
    try {
      call(c);
    } catch (const std::bad_alloc&) {
      failed = true;
    }
    allocations_left = -1;
    if (!failed) {
      ASSERT_TRUE(same_as(c.cache, c.seqs, expected));
      break;
    }
    ++failures;
    ASSERT_TRUE(testing::CacheSnapshot(c.cache, c.seqs) == before) << "a failed call changed the cache";
    call(c);
    ASSERT_TRUE(same_as(c.cache, c.seqs, expected)) << "the call after a failed one";
  }
  if (allocates) EXPECT_GT(failures, 0) << "the call allocated nothing";
}

TEST(PrefixCacheUnderBadAlloc, AddThatSplitsANode) {
  expect_strong_under_bad_alloc([](Cache& c) { c.seqs.push_back(c.cache.add(tokens_from(0, 40)).seq); },
                                [](Cache& c) {
                                  std::vector<Token> tokens = tokens_from(0, 20);
                                  const std::vector<Token> own = tokens_from(100, 30);
                                  tokens.insert(tokens.end(), own.begin(), own.end());
                                  c.seqs.push_back(c.cache.add(tokens).seq);
                                });
}

TEST(PrefixCacheUnderBadAlloc, AddOfAPrefixThatSplitsANode) {
  expect_strong_under_bad_alloc([](Cache& c) { c.seqs.push_back(c.cache.add(tokens_from(0, 40)).seq); },
                                [](Cache& c) { c.seqs.push_back(c.cache.add(tokens_from(0, 21)).seq); });
}

TEST(PrefixCacheUnderBadAlloc, AddThatGoesOnInAChunksTail) {
  expect_strong_under_bad_alloc([](Cache& c) { c.seqs.push_back(c.cache.add(tokens_from(0, 20)).seq); },
                                [](Cache& c) { c.seqs.push_back(c.cache.add(tokens_from(0, 50)).seq); });
}

TEST(PrefixCacheUnderBadAlloc, AppendInPlace) {
  expect_strong_under_bad_alloc([](Cache& c) { c.seqs.push_back(c.cache.add(tokens_from(0, 20)).seq); },
                                [](Cache& c) { c.cache.append(c.seqs[0], tokens_from(100, 70)); });
}

TEST(PrefixCacheUnderBadAlloc, AppendOnANewChild) {
  expect_strong_under_bad_alloc(
      [](Cache& c) {
        c.seqs.push_back(c.cache.add(tokens_from(0, 20)).seq);
        c.seqs.push_back(c.cache.fork(c.seqs[0], 1)[0]);
      },
      [](Cache& c) { c.cache.append(c.seqs[1], tokens_from(100, 40)); });
}

// Forks that all grow a child of one node, a sequence that grows in place, and one alone.
TEST(PrefixCacheUnderBadAlloc, AppendBatch) {
  expect_strong_under_bad_alloc(
      [](Cache& c) {
        c.seqs.push_back(c.cache.add(tokens_from(0, 20)).seq);
        const std::vector<SeqId> forks = c.cache.fork(c.seqs[0], 3);
        c.seqs.insert(c.seqs.end(), forks.begin(), forks.end());
        c.seqs.push_back(c.cache.add(tokens_from(500, 7)).seq);
        c.cache.append(c.seqs[4], tokens_from(600, 2));  // alone at its node: in place
      },
      [](Cache& c) {
        c.cache.append_batch(std::vector<SeqId>{c.seqs[1], c.seqs[2], c.seqs[4], c.seqs[0]}, tokens_from(1000, 4 * 18));
      });
}

TEST(PrefixCacheUnderBadAlloc, ForkAndRemove) {
  const auto setup = [](Cache& c) {
    c.seqs.push_back(c.cache.add(tokens_from(0, 20)).seq);
    c.seqs.push_back(c.cache.add(tokens_from(0, 30)).seq);
  };
  expect_strong_under_bad_alloc(setup, [](Cache& c) {
    const std::vector<SeqId> forks = c.cache.fork(c.seqs[1], 5);
    c.seqs.insert(c.seqs.end(), forks.begin(), forks.end());
  });
  Cache c;
  setup(c);
  allocations_left = 0;
  c.cache.remove(c.seqs[1]);  // allocates nothing: the free lists have their room
  allocations_left = -1;
  EXPECT_FALSE(c.cache.contains(c.seqs[1]));
}

// Random mutations (adds that share a random prefix of earlier tokens, appends, batches of appends,
// forks, removes), one of them failing at every allocation in turn after the others built the tree.
TEST(PrefixCacheUnderBadAlloc, RandomMutations) {
  std::mt19937 random(36);
  const auto below = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };
  for (int trial = 0; trial < 60; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::vector<std::function<void(Cache&)>> mutations;
    for (int m = 0; m < 12; ++m) {
      const std::size_t kind = m < 2 ? 0 : below(5);
      const std::size_t pick = below(1000);
      const int shared = static_cast<int>(below(40));
      const int count = 1 + static_cast<int>(below(30));
      const Token first = 1000 + 100 * static_cast<Token>(m);
      const std::size_t forks = 1 + below(3);
      switch (kind) {
        case 0:
          mutations.push_back([=](Cache& c) {
            std::vector<Token> tokens = tokens_from(0, shared);
            const std::vector<Token> own = tokens_from(first, count);
            tokens.insert(tokens.end(), own.begin(), own.end());
            c.seqs.push_back(c.cache.add(tokens).seq);
          });
          break;
        case 1:
          mutations.push_back([=](Cache& c) { c.cache.append(c.seqs[pick % c.seqs.size()], tokens_from(first, count)); });
          break;
        case 2:  // every other sequence from `pick`, each once
          mutations.push_back([=](Cache& c) {
            std::vector<SeqId> batch;
            for (std::size_t i = pick % 2; i < c.seqs.size(); i += 2) batch.push_back(c.seqs[i]);
            if (batch.empty()) batch.push_back(c.seqs[0]);
            c.cache.append_batch(batch, tokens_from(first, count * static_cast<int>(batch.size())));
          });
          break;
        case 3:
          mutations.push_back([=](Cache& c) {
            const std::vector<SeqId> added = c.cache.fork(c.seqs[pick % c.seqs.size()], static_cast<int>(forks));
            c.seqs.insert(c.seqs.end(), added.begin(), added.end());
          });
          break;
        default:
          mutations.push_back([=](Cache& c) {
            if (c.seqs.size() < 2) return;
            const std::size_t at = pick % c.seqs.size();
            c.cache.remove(c.seqs[at]);
            c.seqs.erase(c.seqs.begin() + static_cast<std::ptrdiff_t>(at));
          });
      }
    }
    const std::size_t failing = 2 + below(mutations.size() - 2);
    expect_strong_under_bad_alloc(
        [&](Cache& c) {
          for (std::size_t m = 0; m < failing; ++m) mutations[m](c);
        },
        mutations[failing], /*allocates=*/false);
  }
}

}  // namespace
}  // namespace chunktree
