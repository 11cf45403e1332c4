#include "chunktree/prefix_cache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <latch>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <thread>

#include "chunktree/numeric.hpp"
#include "support/cache_snapshot.hpp"
#include "support/expect_error.hpp"
#include "support/workload.hpp"

namespace chunktree {
namespace {

CacheConfig small_config(std::int64_t capacity = 64, int chunk = 16) {
  CacheConfig config;
  config.num_kv_heads = 2;
  config.head_dim = 64;
  config.chunk_size = chunk;
  config.capacity_chunks = capacity;
  return config;
}

std::vector<Token> iota_tokens(int count, Token first = 0) {
  std::vector<Token> tokens(static_cast<std::size_t>(count));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// Everything observable about a cache, to prove that a failed call changed nothing.

using testing::expect_error;

TEST(PrefixCache, SharesTheLongestCachedPrefix) {
  PrefixCache cache(small_config());
  const AddResult first = cache.add(iota_tokens(40));
  EXPECT_EQ(first.cached_tokens, 0);
  EXPECT_EQ(first.slots.size(), 40u);

  std::vector<Token> second_tokens = iota_tokens(30);
  second_tokens.push_back(1000);
  const AddResult second = cache.add(second_tokens);
  EXPECT_EQ(second.cached_tokens, 30);
  ASSERT_EQ(second.slots.size(), 1u);

  const std::vector<Slot> a = cache.slots(first.seq);
  const std::vector<Slot> b = cache.slots(second.seq);
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 30, b.begin()));
  const CacheStats stats = cache.stats();
  EXPECT_EQ(stats.tokens_stored, 41);
  EXPECT_EQ(stats.tokens_without_sharing, 71);
  EXPECT_EQ(stats.sequences, 2);
}

TEST(PrefixCache, BranchInsideAChunkKeepsTheSharedPartShared) {
  PrefixCache cache(small_config());
  const AddResult first = cache.add(iota_tokens(40));  // chunks: [0,16) [16,32) [32,40)
  std::vector<Token> branch = iota_tokens(20);
  branch.insert(branch.end(), {500, 501, 502});
  const AddResult second = cache.add(branch);
  EXPECT_EQ(second.cached_tokens, 20);

  const std::vector<Slot> a = cache.slots(first.seq);
  const std::vector<Slot> b = cache.slots(second.seq);
  // The old sequence keeps its chunks and positions; the branch continues in a new chunk.
  EXPECT_EQ(a, first.slots);
  EXPECT_EQ(b[19], a[19]);
  EXPECT_NE(b[20].chunk, a[20].chunk);
  EXPECT_EQ(b[20].offset, 0);
  EXPECT_EQ(cache.refcount(a[16].chunk), 2);  // the split chunk: shared part and the old branch
  EXPECT_EQ(cache.refcount(a[0].chunk), 1);
  EXPECT_EQ(cache.refcount(b[20].chunk), 1);
  EXPECT_EQ(cache.stats().chunks_in_use, 4);
}

// Issue 17: append gives every decode step a new child, so siblings may begin with the same
// tokens, and the longest cached prefix may run down any of them (a greedy walk cached 5 of 7).
TEST(PrefixCache, AddFindsTheLongestPrefixDownAnySibling) {
  PrefixCache cache(small_config());
  const AddResult s1 = cache.add(std::vector<Token>{0, 1, 2});
  const SeqId s2 = cache.fork(s1.seq, 1)[0];
  cache.append(s1.seq, std::vector<Token>{5});  // child [5]
  cache.fork(s1.seq, 1);
  cache.append(s1.seq, std::vector<Token>{6, 6, 6});  // [5] -> [6 6 6]
  cache.append(s2, std::vector<Token>{5, 6});         // a sibling [5 6]: the longer first edge
  const std::vector<Token> tokens = cache.tokens(s1.seq);
  const CacheStats before = cache.stats();
  const AddResult again = cache.add(tokens);
  EXPECT_EQ(again.cached_tokens, 7);
  EXPECT_TRUE(again.slots.empty());
  EXPECT_EQ(cache.slots(again.seq), cache.slots(s1.seq));
  EXPECT_EQ(cache.stats().nodes, before.nodes);
  EXPECT_EQ(cache.stats().tokens_stored, before.tokens_stored);
}

// Of equally long matches, the one that ends where a node ends wins: no needless split.
TEST(PrefixCache, AddPrefersAMatchThatEndsWhereANodeEnds) {
  PrefixCache cache(small_config());
  const AddResult s1 = cache.add(std::vector<Token>{0, 1, 2});
  const SeqId s2 = cache.fork(s1.seq, 1)[0];
  cache.append(s1.seq, std::vector<Token>{5, 6});  // child [5 6]
  cache.append(s2, std::vector<Token>{5});         // child [5]
  const std::int64_t nodes = cache.stats().nodes;
  const AddResult added = cache.add(std::vector<Token>{0, 1, 2, 5});
  EXPECT_EQ(added.cached_tokens, 4);
  EXPECT_EQ(cache.slots(added.seq), cache.slots(s2));
  EXPECT_EQ(cache.stats().nodes, nodes);
}

TEST(PrefixCache, IdenticalAndPrefixSequencesStoreNothingNew) {
  PrefixCache cache(small_config());
  const AddResult first = cache.add(iota_tokens(40));
  const AddResult same = cache.add(iota_tokens(40));
  EXPECT_EQ(same.cached_tokens, 40);
  EXPECT_TRUE(same.slots.empty());
  const AddResult prefix = cache.add(iota_tokens(25));
  EXPECT_EQ(prefix.cached_tokens, 25);
  EXPECT_TRUE(prefix.slots.empty());
  EXPECT_EQ(cache.stats().tokens_stored, 40);
  // The prefix sequence grows its own branch; the others keep their slots.
  const std::vector<Slot> appended = cache.append(prefix.seq, std::vector<Token>{7});
  EXPECT_EQ(cache.slots(first.seq), first.slots);
  EXPECT_EQ(cache.tokens(prefix.seq).size(), 26u);
  EXPECT_NE(appended[0], first.slots[25]);
}

TEST(PrefixCache, AppendFillsTheTailThenReservesChunks) {
  PrefixCache cache(small_config());
  const AddResult added = cache.add(iota_tokens(15));
  const std::vector<Slot> one = cache.append(added.seq, std::vector<Token>{100});
  EXPECT_EQ(one[0], (Slot{added.slots[0].chunk, 15}));
  const std::vector<Slot> two = cache.append(added.seq, std::vector<Token>{101, 102});
  EXPECT_NE(two[0].chunk, added.slots[0].chunk);
  EXPECT_EQ(two[0].offset, 0);
  EXPECT_EQ(two[1], (Slot{two[0].chunk, 1}));
  EXPECT_EQ(cache.length(added.seq), 18);
  EXPECT_EQ(cache.stats().chunks_in_use, 2);
}

TEST(PrefixCache, ForkSharesEverythingAndTheFirstWriterKeepsTheTail) {
  PrefixCache cache(small_config());
  const AddResult parent = cache.add(iota_tokens(20));
  const std::vector<SeqId> children = cache.fork(parent.seq, 3);
  ASSERT_EQ(children.size(), 3u);
  for (SeqId child : children) {
    EXPECT_EQ(cache.slots(child), parent.slots);
    EXPECT_EQ(cache.length(child), 20);
  }
  EXPECT_EQ(cache.stats().tokens_stored, 20);
  EXPECT_EQ(cache.stats().tokens_without_sharing, 80);

  const std::vector<Slot> first = cache.append(children[0], std::vector<Token>{1});
  const std::vector<Slot> second = cache.append(children[1], std::vector<Token>{1});
  EXPECT_EQ(first[0], (Slot{parent.slots[16].chunk, 4}));  // continues in the shared chunk's free tail
  EXPECT_EQ(second[0].offset, 0);                           // the tail is taken: a new chunk
  EXPECT_NE(second[0].chunk, first[0].chunk);
  EXPECT_EQ(cache.slots(parent.seq), parent.slots);
}

TEST(PrefixCache, RemoveFreesChunksNoOneUses) {
  PrefixCache cache(small_config());
  const AddResult a = cache.add(iota_tokens(40));
  std::vector<Token> b_tokens = iota_tokens(20);
  b_tokens.insert(b_tokens.end(), 30, 9);
  const AddResult b = cache.add(b_tokens);
  const std::vector<Slot> b_slots = cache.slots(b.seq);
  const std::int64_t both = cache.stats().chunks_in_use;
  cache.remove(a.seq);
  EXPECT_FALSE(cache.contains(a.seq));
  EXPECT_TRUE(cache.contains(b.seq));
  // a's own part was positions [20,40): the chunk it shares with the prefix stays, [32,40)'s goes.
  EXPECT_EQ(cache.stats().chunks_in_use, both - 1);
  EXPECT_EQ(cache.refcount(a.slots[16].chunk), 1);
  EXPECT_EQ(cache.refcount(a.slots[32].chunk), 0);
  EXPECT_EQ(cache.slots(b.seq), b_slots);
  EXPECT_EQ(cache.stats().tokens_stored, 50);
  cache.remove(b.seq);
  const CacheStats empty = cache.stats();
  EXPECT_EQ(empty.chunks_in_use, 0);
  EXPECT_EQ(empty.tokens_stored, 0);
  EXPECT_EQ(empty.nodes, 0);
  for (ChunkId c = 0; c < 64; ++c) EXPECT_EQ(cache.refcount(c), 0);
}

TEST(PrefixCache, RemovedBranchGivesItsTailBack) {
  PrefixCache cache(small_config());
  const AddResult parent = cache.add(iota_tokens(20));
  const std::vector<SeqId> children = cache.fork(parent.seq, 2);
  const std::vector<Slot> first = cache.append(children[0], std::vector<Token>{1, 2});
  cache.remove(children[0]);
  const std::vector<Slot> second = cache.append(children[1], std::vector<Token>{3});
  EXPECT_EQ(second[0], first[0]);  // the freed tail is claimable again
}

TEST(PrefixCache, CapacityErrorLeavesTheCacheUnchanged) {
  PrefixCache cache(small_config(/*capacity=*/4));
  const AddResult a = cache.add(iota_tokens(40));  // 3 chunks
  const std::vector<SeqId> seqs{a.seq};
  const testing::CacheSnapshot before(cache, seqs);
  expect_error([&] { cache.add(iota_tokens(40, 1000)); }, ErrorCode::capacity_exhausted, "capacity");
  EXPECT_TRUE(testing::CacheSnapshot(cache, seqs) == before);
  // A branch inside a chunk would split a node; the failure must not leave the split behind.
  std::vector<Token> branch = iota_tokens(20);
  branch.insert(branch.end(), 40, 5);
  expect_error([&] { cache.add(branch); }, ErrorCode::capacity_exhausted, "remove sequences");
  EXPECT_TRUE(testing::CacheSnapshot(cache, seqs) == before);
  expect_error([&] { cache.append(a.seq, std::vector<Token>(30, 1)); }, ErrorCode::capacity_exhausted, "capacity");
  EXPECT_TRUE(testing::CacheSnapshot(cache, seqs) == before);
  // Exactly what fits still fits.
  EXPECT_NO_THROW(cache.append(a.seq, std::vector<Token>(24, 1)));
  EXPECT_EQ(cache.stats().chunks_in_use, 4);
}

// Two caches grown the same way: one appends a step's tokens sequence by sequence, the other in one
// append_batch. Forks end on shared nodes and share chunk tails, so the order of claims matters.
// Each cache has handles of its own: sequence i is ones[i] in the first and batches[i] in the second.
TEST(PrefixCache, AppendBatchIsTheSameAsAppendsInOrder) {
  for (int chunk : {16, 64}) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      PrefixCache one_by_one(small_config(/*capacity=*/2048, chunk));
      PrefixCache batched(small_config(/*capacity=*/2048, chunk));
      harness::Random random(seed);
      std::vector<SeqId> ones;
      std::vector<SeqId> batches;
      for (int p = 0; p < 3; ++p) {
        const std::vector<Token> prompt = iota_tokens(5 + static_cast<int>(random.integer(0, 40)), 100 * p);
        const AddResult one = one_by_one.add(prompt);
        const AddResult batch = batched.add(prompt);
        ASSERT_EQ(batch.slots, one.slots);
        const int n = static_cast<int>(random.integer(1, 4));
        ones.push_back(one.seq);
        batches.push_back(batch.seq);
        const std::vector<SeqId> one_forks = one_by_one.fork(one.seq, n);
        const std::vector<SeqId> batch_forks = batched.fork(batch.seq, n);
        ones.insert(ones.end(), one_forks.begin(), one_forks.end());
        batches.insert(batches.end(), batch_forks.begin(), batch_forks.end());
      }
      for (int step = 0; step < 30; ++step) {
        const std::size_t each = step % 3 == 2 ? 3 : 1;  // decode, and now and then a few draft tokens
        std::vector<std::size_t> order(ones.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[random.integer(0, static_cast<std::int64_t>(i) - 1)]);
        std::vector<SeqId> batch_order;
        std::vector<Token> tokens;
        std::vector<Slot> expected;
        for (std::size_t i = 0; i < order.size(); ++i) {
          const std::vector<Token> mine(each, static_cast<Token>(step * 1000 + static_cast<int>(i)));
          tokens.insert(tokens.end(), mine.begin(), mine.end());
          const std::vector<Slot> slots = one_by_one.append(ones[order[i]], mine);
          expected.insert(expected.end(), slots.begin(), slots.end());
          batch_order.push_back(batches[order[i]]);
        }
        ASSERT_EQ(batched.append_batch(batch_order, tokens), expected) << "chunk " << chunk << " seed " << seed << " step " << step;
      }
      const testing::CacheSnapshot a(one_by_one, ones);
      const testing::CacheSnapshot b(batched, batches);
      EXPECT_TRUE(a.tokens == b.tokens && a.slots == b.slots && a.refcounts == b.refcounts);
      EXPECT_EQ(one_by_one.stats().chunks_in_use, batched.stats().chunks_in_use);
    }
  }
}

// A slot's generation has 16 bits: after 65,535 sequences in one slot the slot is retired, so that
// no handle is ever issued twice; the next sequence takes a new slot, and every old handle stays unknown.
TEST(PrefixCache, ASlotIsRetiredBeforeItsGenerationWraps) {
  PrefixCache cache(small_config());
  const SeqId first = cache.add(std::vector<Token>{1}).seq;
  cache.remove(first);
  SeqId last = first;
  for (int i = 1; i < 0xffff; ++i) {
    last = cache.add(std::vector<Token>{1}).seq;
    ASSERT_EQ(last.value & 0xffffffffu, first.value & 0xffffffffu) << "the freed slot is reused until it retires";
    cache.remove(last);
  }
  const SeqId next = cache.add(std::vector<Token>{1}).seq;
  EXPECT_NE(next.value & 0xffffffffu, first.value & 0xffffffffu);
  EXPECT_NE(next, first);
  EXPECT_FALSE(cache.contains(first));
  EXPECT_FALSE(cache.contains(last));
  EXPECT_TRUE(cache.contains(next));
}

// A handle names a sequence of the cache that issued it only: another cache refuses it with an
// error that says so, and changes nothing, even where it holds a sequence at the same place.
TEST(PrefixCache, AHandleOfAnotherCacheIsRefused) {
  PrefixCache first(small_config());
  PrefixCache second(small_config());
  const SeqId mine = first.add(iota_tokens(20)).seq;
  const SeqId theirs = second.add(iota_tokens(20)).seq;
  EXPECT_NE(mine, theirs);
  EXPECT_FALSE(second.contains(mine));
  const testing::CacheSnapshot before(second, {theirs});
  expect_error([&] { second.append(mine, std::vector<Token>{1}); }, ErrorCode::unknown_sequence, "not of this cache");
  expect_error([&] { second.append_batch(std::vector<SeqId>{theirs, mine}, std::vector<Token>{1, 2}); }, ErrorCode::unknown_sequence,
               "not of this cache");
  expect_error([&] { second.fork(mine, 1); }, ErrorCode::unknown_sequence, "not of this cache");
  expect_error([&] { second.remove(mine); }, ErrorCode::unknown_sequence, "not of this cache");
  expect_error([&] { second.length(mine); }, ErrorCode::unknown_sequence, "not of this cache");
  EXPECT_TRUE(testing::CacheSnapshot(second, {theirs}) == before);
  EXPECT_TRUE(first.contains(mine));
}

TEST(PrefixCache, AppendBatchIsAllOrNothing) {
  PrefixCache cache(small_config(/*capacity=*/6));
  const AddResult a = cache.add(iota_tokens(16));  // one full chunk
  const std::vector<SeqId> forks = cache.fork(a.seq, 2);
  const AddResult gone = cache.add(iota_tokens(3, 500));
  cache.remove(gone.seq);
  const std::vector<SeqId> seqs{a.seq, forks[0], forks[1]};
  const testing::CacheSnapshot before(cache, seqs);
  // Each needs a new chunk for 17 tokens: 2 each, 6 in all, but only 5 are free.
  expect_error([&] { cache.append_batch(seqs, std::vector<Token>(51, 1)); }, ErrorCode::capacity_exhausted, "capacity");
  expect_error([&] { cache.append_batch(std::vector<SeqId>{a.seq, forks[0], a.seq}, std::vector<Token>(3, 1)); },
               ErrorCode::invalid_argument, "twice");
  expect_error([&] { cache.append_batch(std::vector<SeqId>{a.seq, gone.seq}, std::vector<Token>(2, 1)); }, ErrorCode::unknown_sequence,
               "removed");
  expect_error([&] { cache.append_batch(seqs, std::vector<Token>(4, 1)); }, ErrorCode::invalid_argument, "same number of tokens");
  expect_error([&] { cache.append_batch(seqs, std::vector<Token>{}); }, ErrorCode::invalid_argument, "same number of tokens");
  expect_error([&] { cache.append_batch(std::vector<SeqId>{}, std::vector<Token>{1}); }, ErrorCode::invalid_argument, "no sequences");
  EXPECT_TRUE(testing::CacheSnapshot(cache, seqs) == before);
  // What fits still fits: 16 tokens each, one new chunk each.
  EXPECT_NO_THROW(cache.append_batch(seqs, std::vector<Token>(48, 1)));
  EXPECT_EQ(cache.stats().chunks_in_use, 4);
}

TEST(PrefixCache, BadCallsAreClearErrorsAndChangeNothing) {
  PrefixCache cache(small_config());
  const AddResult a = cache.add(iota_tokens(10));
  const AddResult gone = cache.add(iota_tokens(5, 50));
  cache.remove(gone.seq);
  const std::vector<SeqId> seqs{a.seq};
  const testing::CacheSnapshot before(cache, seqs);

  expect_error([&] { cache.add(std::vector<Token>{}); }, ErrorCode::invalid_argument, "empty");
  expect_error([&] { cache.append(a.seq, std::vector<Token>{}); }, ErrorCode::invalid_argument, "empty");
  expect_error([&] { cache.append(gone.seq, std::vector<Token>{1}); }, ErrorCode::unknown_sequence, "removed");
  expect_error([&] { cache.append(SeqId{12345}, std::vector<Token>{1}); }, ErrorCode::unknown_sequence, "unknown");
  expect_error([&] { cache.remove(gone.seq); }, ErrorCode::unknown_sequence, "removed");
  expect_error([&] { cache.fork(a.seq, 0); }, ErrorCode::invalid_argument, "fork: n must be from 1 to 16777216");
  expect_error([&] { cache.fork(a.seq, (1 << 24) + 1); }, ErrorCode::invalid_argument, "(fork in several calls for more), got 16777217");
  expect_error([&] { cache.fork(gone.seq, 1); }, ErrorCode::unknown_sequence, "handle");
  // An unset handle is never the first sequence's: no handle is SeqId{}.
  EXPECT_FALSE(cache.contains(SeqId{}));
  expect_error([&] { cache.append(SeqId{}, std::vector<Token>{1}); }, ErrorCode::unknown_sequence, "unknown");
  expect_error([&] { cache.remove(SeqId{}); }, ErrorCode::unknown_sequence, "unknown");
  expect_error([&] { std::vector<KvPiece> pieces; cache.append_node_pieces(-1, pieces); }, ErrorCode::invalid_argument, "live node");
  EXPECT_TRUE(testing::CacheSnapshot(cache, seqs) == before);
}

TEST(PrefixCache, AMovedFromCacheSaysSo) {
  PrefixCache cache(small_config());
  const AddResult a = cache.add(iota_tokens(10));
  PrefixCache moved = std::move(cache);
  EXPECT_TRUE(moved.contains(a.seq));
  expect_error([&] { (void)cache.contains(a.seq); }, ErrorCode::invalid_argument, "moved from");  // NOLINT(bugprone-use-after-move)
  expect_error([&] { cache.add(iota_tokens(3)); }, ErrorCode::invalid_argument, "moved from");  // NOLINT(bugprone-use-after-move)
}

TEST(PrefixCache, WriteKvChecksShapesDtypesAndSlots) {
  PrefixCache cache(small_config());
  const AddResult a = cache.add(iota_tokens(3));
  std::vector<float> values(3 * 2 * 64, 1.0f);
  const ConstTensorView good(values.data(), DType::f32, Device::cpu, {3, 2, 64});
  EXPECT_NO_THROW(cache.write_kv(0, a.slots, good, good));
  const ConstTensorView wrong_shape(values.data(), DType::f32, Device::cpu, {3, 64, 2});
  expect_error([&] { cache.write_kv(0, a.slots, wrong_shape, good); }, ErrorCode::invalid_argument, "expected [3, 2, 64]");
  const ConstTensorView on_gpu(values.data(), DType::f32, Device::cuda, {3, 2, 64});
  expect_error([&] { cache.write_kv(0, a.slots, good, on_gpu); }, ErrorCode::invalid_argument, "cuda");
  expect_error([&] { cache.write_kv(1, a.slots, good, good); }, ErrorCode::invalid_argument, "layer 1");
  const std::vector<Slot> unreserved{a.slots[0], a.slots[1], Slot{a.slots[2].chunk, 9}};
  expect_error([&] { cache.write_kv(0, unreserved, good, good); }, ErrorCode::invalid_argument, "holds no token of a live sequence");
  // A slot twice in one call would keep whichever copy lands last (on the GPU, either).
  const std::vector<Slot> twice{a.slots[0], a.slots[2], a.slots[0]};
  expect_error([&] { cache.write_kv(0, twice, good, good); }, ErrorCode::invalid_argument,
               "write_kv: slots 0 and 2 are both (chunk " + std::to_string(a.slots[0].chunk) + ", offset 0); write each slot once a call");
}

// write_kv's refusal compares magnitudes with these bounds: the least that round_to takes to inf.
TEST(PrefixCache, TheBoundsOfRoundingToInfAreRoundTosOwn) {
  for (const DType dtype : {DType::f16, DType::bf16}) {
    SCOPED_TRACE(std::string(to_string(dtype)));
    const float limit = first_magnitude_rounding_to_inf(dtype);
    EXPECT_TRUE(std::isinf(round_to(dtype, limit)));
    EXPECT_TRUE(std::isinf(round_to(dtype, -limit)));
    EXPECT_TRUE(std::isfinite(round_to(dtype, std::nextafter(limit, 0.0f))));
    EXPECT_TRUE(std::isfinite(round_to(dtype, -std::nextafter(limit, 0.0f))));
  }
}

// A host value that the cache's dtype cannot hold would be stored as inf and make attention NaN:
// refused, naming where it is, before any of the call's KV is written.
TEST(PrefixCache, WriteKvRefusesHostValuesTheCacheDtypeCannotHold) {
  CacheConfig config = small_config();
  config.dtype = DType::f16;
  PrefixCache cache(config);
  const AddResult a = cache.add(iota_tokens(3));
  std::vector<float> k(3 * 2 * 64, 1.0f);
  std::vector<float> v(3 * 2 * 64, 2.0f);
  const ConstTensorView k_view(k.data(), DType::f32, Device::cpu, {3, 2, 64});
  const ConstTensorView v_view(v.data(), DType::f32, Device::cpu, {3, 2, 64});
  cache.write_kv(0, a.slots, k_view, v_view);
  const PoolView pool = cache.pool(0);
  const auto pool_bytes = [&] {
    const auto* begin = static_cast<const std::byte*>(pool.k);
    return std::vector<std::byte>(begin, begin + config.capacity_chunks * config.num_kv_heads * config.chunk_size * config.head_dim * 2);
  };
  const std::vector<std::byte> before = pool_bytes();
  v[(2 * 2 + 1) * 64 + 5] = 70000.0f;  // slot 2, kv head 1, dim 5
  k[0] = 3.0f;                          // written first, were anything written
  expect_error([&] { cache.write_kv(0, a.slots, k_view, v_view); }, ErrorCode::invalid_argument,
               "PrefixCache: write_kv: v holds 70000 (slot 2, kv head 1, dim 5), which the cache's f16 rounds to inf; scale K and V, or make "
               "the cache bf16");
  EXPECT_EQ(pool_bytes(), before);
  v[(2 * 2 + 1) * 64 + 5] = 65519.0f;  // rounds to float16's largest, 65504; inf given as inf is stored as it is
  v[7] = std::numeric_limits<float>::infinity();
  EXPECT_NO_THROW(cache.write_kv(0, a.slots, k_view, v_view));
}

// Issue 17: a slot may be written while it holds a token of a live sequence, and only then.
TEST(PrefixCache, WriteKvAcceptsExactlyTheSlotsOfLiveSequences) {
  PrefixCache cache(small_config());
  const AddResult a = cache.add(iota_tokens(20));  // chunk 0 whole, chunk 1 positions [0, 4)
  const SeqId b = cache.fork(a.seq, 1)[0];
  const std::vector<Slot> b_tail = cache.append(b, std::vector<Token>{1, 2});  // a's tail in chunk 1: [4, 6)
  const AddResult c = cache.add(iota_tokens(40, 100));                      // chunks of its own
  std::vector<Token> branch = iota_tokens(10);
  branch.push_back(999);
  const AddResult d = cache.add(branch);  // splits a's node after 10 tokens; its token goes to a new chunk
  ASSERT_EQ(b_tail[0], (Slot{a.slots[16].chunk, 4}));

  std::vector<float> values(2 * 64, 1.0f);
  auto write = [&](std::vector<Slot> slots, float value) {
    values.assign(slots.size() * 2 * 64, value);
    const ConstTensorView kv(values.data(), DType::f32, Device::cpu, {static_cast<std::int64_t>(slots.size()), 2, 64});
    cache.write_kv(0, slots, kv, kv);
  };
  for (const std::vector<Slot>& live : {a.slots, b_tail, c.slots, d.slots}) EXPECT_NO_THROW(write(live, 1.0f));

  // Removed sequences' slots: a tail given back, chunks returned to the pool, the split's new chunk.
  cache.remove(b);
  cache.remove(c.seq);
  cache.remove(d.seq);
  for (const Slot gone : {b_tail[0], b_tail[1], c.slots[0], c.slots[39], d.slots[0]}) {
    expect_error([&] { write({gone}, 2.0f); }, ErrorCode::invalid_argument, "holds no token of a live sequence");
  }
  // A removed sequence's slots stay writable while a fork of it holds them: writing shared KV is allowed.
  const SeqId e = cache.fork(a.seq, 1)[0];
  cache.remove(a.seq);
  EXPECT_NO_THROW(write(cache.slots(e), 1.0f));

  for (const Slot outside : {Slot{-1, 0}, Slot{64, 0}, Slot{0, 16}, Slot{0, -1}}) {
    expect_error([&] { write({outside}, 2.0f); }, ErrorCode::invalid_argument, "outside the pool of 64 chunks of 16 positions");
  }
  // A refused call writes nothing, not even the good slots before the bad one.
  expect_error([&] { write({a.slots[0], b_tail[0]}, 2.0f); }, ErrorCode::invalid_argument, "slot 1 (chunk 1, offset 4)");
  const PoolView pool = cache.pool(0);
  EXPECT_EQ(load_element(pool.k, pool.dtype, a.slots[0].chunk * pool.chunk_stride + a.slots[0].offset * pool.position_stride), 1.0f);
}

// Issue 17: a mutation that would overlap another call on the cache is refused, and changes nothing.
TEST(PrefixCache, MutationWhileAnotherThreadReadsIsRefused) {
  PrefixCache cache(small_config());
  const AddResult a = cache.add(iota_tokens(10));
  const std::vector<SeqId> seqs{a.seq};
  const testing::CacheSnapshot before(cache, seqs);
  std::vector<float> values(10 * 2 * 64, 1.0f);
  const ConstTensorView kv(values.data(), DType::f32, Device::cpu, {10, 2, 64});

  std::latch held(1);
  std::latch done(1);
  std::thread reader([&] {
    const PrefixCache::ReadGuard reading(cache, "the reader thread");
    held.count_down();
    done.wait();
  });
  held.wait();
  const std::string fragment = "concurrent use from two threads";
  expect_error([&] { cache.add(iota_tokens(5, 50)); }, ErrorCode::invalid_argument, fragment);
  expect_error([&] { cache.append(a.seq, std::vector<Token>{1}); }, ErrorCode::invalid_argument, fragment);
  expect_error([&] { cache.fork(a.seq, 1); }, ErrorCode::invalid_argument, fragment);
  expect_error([&] { cache.remove(a.seq); }, ErrorCode::invalid_argument, "not thread-safe");
  expect_error([&] { cache.write_kv(0, a.slots, kv, kv); }, ErrorCode::invalid_argument, "PrefixCache::write_kv");
  EXPECT_EQ(cache.tokens(a.seq), iota_tokens(10));  // reading beside a reader is fine
  done.count_down();
  reader.join();

  EXPECT_TRUE(testing::CacheSnapshot(cache, seqs) == before);
  EXPECT_NO_THROW(cache.append(a.seq, std::vector<Token>{1}));
  // A guard held across a mutation in one thread is the same misuse.
  const PrefixCache::ReadGuard reading(cache, "this test");
  expect_error([&] { cache.remove(a.seq); }, ErrorCode::invalid_argument, "ReadGuard held across this call");
}

// A reader's runs of a node list are checked against the list: a run past its end, or one that ends
// before it begins, is an error, not a read out of bounds.
TEST(PrefixCache, ReadGuardPiecesOfRunsOutsideTheListAreRefused) {
  PrefixCache cache(small_config());
  const SeqId a = cache.add(iota_tokens(40)).seq;
  const PrefixCache::ReadGuard reading(cache, "this test");
  std::vector<std::int32_t> nodes;
  std::vector<std::uint32_t> path_begin;
  std::vector<std::int64_t> lengths;
  ASSERT_EQ(reading.write_paths(std::vector<SeqId>{a}, nodes, path_begin, lengths), 1u);
  std::vector<KvPiece> room(64);
  std::vector<std::uint32_t> ends(1);
  const auto count = static_cast<std::uint32_t>(nodes.size());
  EXPECT_GT(reading.write_pieces(nodes, std::vector<PrefixCache::ReadGuard::NodeRun>{{0, count}}, room, ends), 0u);
  for (const PrefixCache::ReadGuard::NodeRun run : {PrefixCache::ReadGuard::NodeRun{0, count + 1000}, PrefixCache::ReadGuard::NodeRun{1, 0}}) {
    expect_error([&] { reading.write_pieces(nodes, std::vector<PrefixCache::ReadGuard::NodeRun>{run}, room, ends); },
                 ErrorCode::invalid_argument, "write_pieces: run 0 is nodes [");
  }
}

// A reader's node ids are checked as append_node_pieces checks them: an id out of range or of a
// node that was freed is an error of the cache (it read as 0 tokens and no pieces, or threw
// std::out_of_range).
TEST(PrefixCache, ReadGuardRefusesIdsThatAreNotLiveNodes) {
  PrefixCache cache(small_config());
  const SeqId a = cache.add(iota_tokens(40)).seq;
  const SeqId b = cache.fork(a, 1)[0];
  cache.append(b, std::vector<Token>{7, 8});
  const std::int32_t freed = cache.path(b).back();  // b's own node, freed with b
  cache.remove(b);
  const PrefixCache::ReadGuard reading(cache, "this test");
  EXPECT_EQ(reading.node_tokens(cache.path(a).back()), 40);
  std::vector<KvPiece> pieces;
  std::vector<KvPiece> room(64);
  std::vector<std::uint32_t> ends(1);
  for (const std::int32_t bad : {freed, -1, 999}) {
    SCOPED_TRACE(bad);
    const std::string fragment = std::to_string(bad) + " is not the id of a live node";
    expect_error([&] { reading.node_tokens(bad); }, ErrorCode::invalid_argument, "ReadGuard::node_tokens: " + fragment);
    expect_error([&] { reading.append_pieces(std::vector<std::int32_t>{bad}, pieces); }, ErrorCode::invalid_argument,
                 "ReadGuard::append_pieces: " + fragment);
    expect_error([&] { reading.write_pieces(std::vector<std::int32_t>{bad}, std::vector<PrefixCache::ReadGuard::NodeRun>{{0, 1}}, room, ends); },
                 ErrorCode::invalid_argument, "ReadGuard::write_pieces: " + fragment);
  }
  EXPECT_TRUE(pieces.empty());
}

TEST(PrefixCache, ConfigIsValidated) {
  auto expect_bad = [](auto change, const std::string& fragment) {
    CacheConfig config = small_config();
    change(config);
    expect_error([&] { PrefixCache cache(config); }, ErrorCode::invalid_argument, fragment);
  };
  expect_bad([](CacheConfig& c) { c.head_dim = 96; }, "head_dim");
  expect_bad([](CacheConfig& c) { c.chunk_size = 48; }, "chunk_size");
  expect_bad([](CacheConfig& c) { c.num_kv_heads = 0; }, "num_kv_heads");
  expect_bad([](CacheConfig& c) { c.num_layers = 0; }, "num_layers");
  expect_bad([](CacheConfig& c) { c.capacity_chunks = 0; }, "capacity_chunks");
  expect_bad([](CacheConfig& c) { c.dtype = static_cast<DType>(7); }, "dtype must be f32, f16 or bf16");
  expect_bad([](CacheConfig& c) { c.device = static_cast<Device>(5); }, "device must be cpu or cuda");
}

TEST(PrefixCache, VersionChangesWithTheTree) {
  PrefixCache cache(small_config());
  const std::uint64_t start = cache.version();
  const AddResult a = cache.add(iota_tokens(3));
  const std::uint64_t added = cache.version();
  EXPECT_NE(added, start);
  std::vector<float> values(3 * 2 * 64, 1.0f);
  const ConstTensorView kv(values.data(), DType::f32, Device::cpu, {3, 2, 64});
  cache.write_kv(0, a.slots, kv, kv);
  EXPECT_EQ(cache.version(), added);  // writing KV does not change the tree
  cache.fork(a.seq, 1);
  EXPECT_NE(cache.version(), added);
  PrefixCache other(small_config());
  EXPECT_NE(other.version(), cache.version());  // versions are unique across caches
}

// Random operations against a model: every sequence reads back its own tokens, every
// position's KV is the one its prefix determines (so no slot is shared by different
// prefixes), and chunk accounting matches the slots in use.
TEST(PrefixCache, RandomOperationsKeepEverySequenceIntact) {
  for (int chunk : {16, 64}) {
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      CacheConfig config = small_config(/*capacity=*/4096, chunk);
      config.num_layers = 2;
      config.head_dim = 64;
      testing::Workload workload(config);
      harness::Random random(seed);
      // Grow, thin out, grow again: later branches reuse tails and chunks that removals freed.
      for (int phase = 0; phase < 3; ++phase) {
        workload.grow(random, 100, 40, seed % 2 == 0 ? 3 : 50);
        for (std::size_t i = workload.seqs.size(); i-- > 1;) {
          if (random.chance(0.5)) workload.remove(i);
        }
      }

      std::set<ChunkId> used;
      std::int64_t total = 0;
      for (std::size_t i = 0; i < workload.seqs.size(); ++i) {
        const SeqId seq = workload.seqs[i];
        ASSERT_EQ(workload.cache.tokens(seq), workload.tokens[i]);
        ASSERT_EQ(workload.cache.length(seq), static_cast<std::int64_t>(workload.tokens[i].size()));
        total += workload.cache.length(seq);
        const std::vector<Slot> slots = workload.cache.slots(seq);
        const PoolView pool = workload.cache.pool(1);
        const std::vector<float> k = workload.expected_kv(i, 0, 1);
        const std::vector<float> v = workload.expected_kv(i, 1, 1);
        for (std::size_t t = 0; t < slots.size(); ++t) {
          used.insert(slots[t].chunk);
          for (int h = 0; h < config.num_kv_heads; ++h) {
            const std::int64_t base = slots[t].chunk * pool.chunk_stride + h * pool.head_stride + slots[t].offset * pool.position_stride;
            const std::size_t expected = (t * static_cast<std::size_t>(config.num_kv_heads) + static_cast<std::size_t>(h)) * 64;
            for (int d = 0; d < 64; d += 7) {
              ASSERT_EQ(load_element(pool.k, pool.dtype, base + d), k[expected + static_cast<std::size_t>(d)]);
              ASSERT_EQ(load_element(pool.v, pool.dtype, base + d), v[expected + static_cast<std::size_t>(d)]);
            }
          }
        }
      }
      const CacheStats stats = workload.cache.stats();
      EXPECT_EQ(stats.chunks_in_use, static_cast<std::int64_t>(used.size()));
      EXPECT_EQ(stats.tokens_without_sharing, total);
      EXPECT_EQ(stats.sequences, static_cast<std::int64_t>(workload.seqs.size()));
      for (ChunkId c = 0; c < config.capacity_chunks; ++c) EXPECT_EQ(workload.cache.refcount(c) > 0, used.count(c) == 1);

      while (!workload.seqs.empty()) workload.remove(0);
      EXPECT_EQ(workload.cache.stats().chunks_in_use, 0);
      EXPECT_EQ(workload.cache.stats().tokens_stored, 0);
      EXPECT_EQ(workload.cache.stats().nodes, 0);
    }
  }
}

}  // namespace
}  // namespace chunktree
