// Model-based randomized test of the prefix cache: random add / append / fork / remove / write_kv
// calls, some of them bad (unknown handles, slots no live sequence holds, more tokens than the pool
// has room for), against a plain model that only knows each live sequence's token list. After every
// call it checks what the cache promises (docs/DESIGN.md, "The prefix cache"):
//   - every sequence reads back its tokens and length, and the KV written for each of its tokens;
//   - a slot is shared only by equal prefixes (the KV a slot holds is the one its prefix determines);
//   - add shares the longest common prefix with any live sequence, exactly: every node lies on a live
//     sequence's path, so the tree holds every prefix of a live sequence and nothing else;
//   - chunk accounting: chunks_in_use, tokens_stored, tokens_without_sharing, nodes and every
//     chunk's refcount agree with the live sequences' paths and slots;
//   - write_kv accepts exactly the slots that hold a token of a live sequence;
//   - a failed call leaves the cache exactly as it was, and capacity_exhausted comes only when the
//     pool really lacks the chunks;
//   - removing every sequence frees every chunk and node.
//
// The suite runs a short budget with a fixed seed. Run it longer, or with other seeds, by hand:
//   CHUNKTREE_MODEL_OPS=1000000 CHUNKTREE_MODEL_SEED=7 chunktree_cpu_tests --gtest_filter='PrefixCacheModel*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "chunktree/prefix_cache.hpp"
#include "support/cache_snapshot.hpp"
#include "support/workload.hpp"

namespace chunktree {
namespace {

constexpr int kOperations = 6000;
constexpr std::uint64_t kSeed = 1;
constexpr std::size_t kMaxSequences = 40;  // beyond it, remove: checks cost the live tokens
constexpr int kClearEvery = 500;           // operations between removing everything

std::uint64_t environment_or(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value == nullptr || *value == '\0' ? fallback : std::strtoull(value, nullptr, 10);
}

// What one token's K and V hold: both derived from the hash of the prefix that ends at it, in
// integers below 2^24 so that they are exact in f32.
float k_value(std::uint64_t prefix) { return static_cast<float>(prefix >> 40); }
float v_value(std::uint64_t prefix) { return static_cast<float>((prefix >> 16) & 0xffffff); }

struct ModelSequence {
  SeqId seq;
  std::vector<Token> tokens;
  std::vector<std::uint64_t> prefixes;  // prefixes[i]: hash of tokens[0..i]

  void push(Token token) {
    tokens.push_back(token);
    prefixes.push_back(testing::extend_hash(prefixes.empty() ? 0 : prefixes.back(), token));
  }
};


struct Counts {
  std::int64_t adds = 0, appends = 0, forks = 0, removes = 0, capacity_failures = 0, bad_calls = 0, clears = 0;
};

class ModelRun {
 public:
  ModelRun(const CacheConfig& config, std::uint64_t seed) : cache_(config), random_(seed) {}

  void step() {
    const double pick = random_.uniform();
    if (model_.size() > kMaxSequences) {
      remove(pick_sequence());
    } else if (model_.empty() || pick < 0.30) {
      add();
    } else if (pick < 0.65) {
      append();
    } else if (pick < 0.73) {
      fork();
    } else if (pick < 0.95) {
      remove(pick_sequence());
    } else {
      bad_call();
    }
    if (::testing::Test::HasFailure()) return;
    check();
    if (::testing::Test::HasFailure()) return;
    probe_write_kv();
  }

  // Removes everything; the cache must be empty again.
  void clear() {
    while (!model_.empty()) remove(model_.size() - 1);
    const CacheStats stats = cache_.stats();
    ASSERT_EQ(stats.chunks_in_use, 0);
    ASSERT_EQ(stats.tokens_stored, 0);
    ASSERT_EQ(stats.tokens_without_sharing, 0);
    ASSERT_EQ(stats.sequences, 0);
    ASSERT_EQ(stats.nodes, 0);
    for (ChunkId c = 0; c < cache_.config().capacity_chunks; ++c) ASSERT_EQ(cache_.refcount(c), 0);
    counts_.clears += 1;
  }

  const Counts& counts() const { return counts_; }

 private:
  std::int32_t chunk_size() const { return cache_.config().chunk_size; }
  std::int64_t positions() const { return cache_.config().capacity_chunks * chunk_size(); }
  std::size_t pick_sequence() { return static_cast<std::size_t>(random_.integer(0, static_cast<std::int64_t>(model_.size()) - 1)); }
  testing::CacheSnapshot snapshot() const {
    std::vector<SeqId> seqs;
    for (const ModelSequence& s : model_) seqs.push_back(s.seq);
    return testing::CacheSnapshot(cache_, seqs);
  }
  // A small vocabulary, so that branches often start with the same token.
  Token random_token() { return static_cast<Token>(random_.integer(0, 3)); }
  std::vector<Token> random_tokens(std::int64_t count) {
    std::vector<Token> tokens(static_cast<std::size_t>(count));
    for (Token& token : tokens) token = random_token();
    return tokens;
  }
  // Mostly decode steps of one token; sometimes long enough to cross chunks.
  std::int64_t random_length() { return random_.chance(0.7) ? 1 : random_.integer(2, 2 * chunk_size() + 3); }

  // The cache's upper bound on new chunks for `tokens` uncached tokens: a tail only lowers it.
  bool must_fit(std::int64_t tokens) const {
    const std::int64_t free = cache_.config().capacity_chunks - cache_.stats().chunks_in_use;
    return (tokens + chunk_size() - 1) / chunk_size() <= free;
  }

  // Runs a call that stores `uncached` new tokens. It may fail only with capacity_exhausted, only
  // when the pool really lacks the chunks, and then must leave the cache unchanged. Returns
  // whether the call succeeded.
  template <typename Call>
  bool mutate(std::int64_t uncached, Call call) {
    const bool fits = must_fit(uncached);
    const std::optional<testing::CacheSnapshot> before = fits ? std::nullopt : std::optional<testing::CacheSnapshot>(snapshot());
    try {
      call();
      return true;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::capacity_exhausted) << error.what();
      EXPECT_FALSE(fits) << "capacity_exhausted for " << uncached << " new tokens with "
                         << cache_.config().capacity_chunks - cache_.stats().chunks_in_use << " free chunks: " << error.what();
      if (before) EXPECT_TRUE(snapshot() == *before) << "a failed call changed the cache: " << error.what();
      counts_.capacity_failures += 1;
      return false;
    }
  }

  void write(const ModelSequence& s, std::size_t first, const std::vector<Slot>& slots) {
    ASSERT_EQ(slots.size(), s.tokens.size() - first);
    const int heads = cache_.config().num_kv_heads;
    const int dim = cache_.config().head_dim;
    std::vector<float> k;
    std::vector<float> v;
    for (std::size_t t = first; t < s.tokens.size(); ++t) {
      k.insert(k.end(), static_cast<std::size_t>(heads * dim), k_value(s.prefixes[t]));
      v.insert(v.end(), static_cast<std::size_t>(heads * dim), v_value(s.prefixes[t]));
    }
    const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), heads, dim};
    cache_.write_kv(0, slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                    ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
  }

  void add() {
    ModelSequence s;
    if (!model_.empty() && random_.chance(0.8)) {
      // A prefix of a live sequence (all of it, sometimes), then fresh tokens.
      const std::vector<Token>& source = model_[pick_sequence()].tokens;
      const std::int64_t keep = random_.chance(0.3) ? static_cast<std::int64_t>(source.size())
                                                    : random_.integer(0, static_cast<std::int64_t>(source.size()));
      for (std::int64_t t = 0; t < keep; ++t) s.push(source[static_cast<std::size_t>(t)]);
    }
    const std::int64_t fresh = random_.chance(0.4) && !s.tokens.empty() ? 0 : random_length();
    for (Token token : random_tokens(fresh)) s.push(token);

    // The tree holds exactly the prefixes of live sequences, so add must share the longest common
    // prefix with any of them. When that prefix is a whole live sequence, a node ends there and
    // the add must not split one.
    std::size_t expected_cached = 0;
    bool ends_at_a_node = false;
    for (const ModelSequence& other : model_) {
      const auto mismatch = std::mismatch(s.tokens.begin(), s.tokens.end(), other.tokens.begin(), other.tokens.end());
      const auto common = static_cast<std::size_t>(mismatch.first - s.tokens.begin());
      if (common > expected_cached) ends_at_a_node = false;
      expected_cached = std::max(expected_cached, common);
      ends_at_a_node = ends_at_a_node || (common == expected_cached && common == other.tokens.size());
    }
    const std::int64_t nodes_before = cache_.stats().nodes;
    AddResult result;
    if (!mutate(static_cast<std::int64_t>(s.tokens.size() - expected_cached), [&] { result = cache_.add(s.tokens); })) return;
    ASSERT_EQ(result.cached_tokens, static_cast<std::int64_t>(expected_cached)) << "add did not share the longest cached prefix";
    if (ends_at_a_node) {
      ASSERT_EQ(cache_.stats().nodes, nodes_before + (expected_cached < s.tokens.size() ? 1 : 0)) << "add split a node needlessly";
    }
    s.seq = result.seq;
    write(s, expected_cached, result.slots);
    const std::vector<Slot> slots = cache_.slots(s.seq);
    ASSERT_TRUE(std::equal(result.slots.begin(), result.slots.end(), slots.end() - static_cast<std::ptrdiff_t>(result.slots.size())));
    model_.push_back(std::move(s));
    counts_.adds += 1;
  }

  void append() {
    const std::size_t index = pick_sequence();
    const std::vector<Token> more = random_tokens(random_length());
    std::vector<Slot> slots;
    if (!mutate(static_cast<std::int64_t>(more.size()), [&] { slots = cache_.append(model_[index].seq, more); })) return;
    ModelSequence& s = model_[index];
    const std::size_t first = s.tokens.size();
    for (Token token : more) s.push(token);
    write(s, first, slots);
    counts_.appends += 1;
  }

  void fork() {
    const ModelSequence parent = model_[pick_sequence()];
    for (SeqId child : cache_.fork(parent.seq, static_cast<int>(random_.integer(1, 3)))) {
      model_.push_back(parent);
      model_.back().seq = child;
    }
    counts_.forks += 1;
  }

  void remove(std::size_t index) {
    cache_.remove(model_[index].seq);
    removed_.push_back(model_[index].seq);
    model_.erase(model_.begin() + static_cast<std::ptrdiff_t>(index));
    counts_.removes += 1;
  }

  // A call that must fail without changing anything.
  void bad_call() {
    const testing::CacheSnapshot before = snapshot();
    const SeqId gone = removed_.empty() ? SeqId{0xdeadbeef} : removed_[static_cast<std::size_t>(random_.integer(0, static_cast<std::int64_t>(removed_.size()) - 1))];
    try {
      switch (random_.integer(0, 3)) {
        case 0: cache_.append(gone, random_tokens(1)); break;
        case 1: cache_.fork(gone, 1); break;
        case 2: cache_.remove(gone); break;
        default: cache_.add(std::vector<Token>{}); break;
      }
      ADD_FAILURE() << "a call with a removed handle or no tokens succeeded";
    } catch (const Error& error) {
      EXPECT_TRUE(error.code() == ErrorCode::unknown_sequence || error.code() == ErrorCode::invalid_argument) << error.what();
    }
    EXPECT_FALSE(cache_.contains(gone));
    EXPECT_TRUE(snapshot() == before);
    counts_.bad_calls += 1;
  }

  // Everything the cache holds agrees with the model.
  void check() {
    const CacheConfig& config = cache_.config();
    const PoolView pool = cache_.pool(0);
    const auto* k = static_cast<const float*>(pool.k);
    const auto* v = static_cast<const float*>(pool.v);
    prefix_at_.assign(static_cast<std::size_t>(positions()), 0);
    live_.assign(static_cast<std::size_t>(positions()), false);
    std::vector<std::int32_t> nodes;
    std::int64_t tokens_without_sharing = 0;
    for (const ModelSequence& s : model_) {
      ASSERT_EQ(cache_.length(s.seq), static_cast<std::int64_t>(s.tokens.size()));
      ASSERT_EQ(cache_.tokens(s.seq), s.tokens);
      tokens_without_sharing += static_cast<std::int64_t>(s.tokens.size());
      const std::vector<Slot> slots = cache_.slots(s.seq);
      ASSERT_EQ(slots.size(), s.tokens.size());
      for (std::size_t t = 0; t < slots.size(); ++t) {
        const std::size_t position = static_cast<std::size_t>(slots[t].chunk) * static_cast<std::size_t>(chunk_size()) +
                                     static_cast<std::size_t>(slots[t].offset);
        if (live_[position]) {
          ASSERT_EQ(prefix_at_[position], s.prefixes[t]) << "slot (" << slots[t].chunk << ", " << slots[t].offset
                                                         << ") is shared by different prefixes";
        }
        live_[position] = true;
        prefix_at_[position] = s.prefixes[t];
        const std::int64_t element = slots[t].chunk * pool.chunk_stride + slots[t].offset * pool.position_stride;
        ASSERT_EQ(k[element], k_value(s.prefixes[t]));
        ASSERT_EQ(v[element + config.head_dim - 1], v_value(s.prefixes[t]));
      }
      const std::vector<std::int32_t> path = cache_.path(s.seq);
      nodes.insert(nodes.end(), path.begin(), path.end());
    }
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());

    // Refcounts: the nodes whose pieces use each chunk.
    std::vector<std::int32_t> refcounts(static_cast<std::size_t>(config.capacity_chunks), 0);
    std::vector<KvPiece> pieces;
    for (std::int32_t node : nodes) {
      pieces.clear();
      cache_.append_node_pieces(node, pieces);
      for (const KvPiece& piece : pieces) refcounts[static_cast<std::size_t>(piece.chunk)] += 1;
    }
    std::int64_t chunks_in_use = 0;
    for (ChunkId c = 0; c < config.capacity_chunks; ++c) {
      ASSERT_EQ(cache_.refcount(c), refcounts[static_cast<std::size_t>(c)]) << "chunk " << c;
      chunks_in_use += refcounts[static_cast<std::size_t>(c)] > 0 ? 1 : 0;
    }
    const CacheStats stats = cache_.stats();
    ASSERT_EQ(stats.sequences, static_cast<std::int64_t>(model_.size()));
    ASSERT_EQ(stats.tokens_without_sharing, tokens_without_sharing);
    ASSERT_EQ(stats.tokens_stored, std::count(live_.begin(), live_.end(), true));
    ASSERT_EQ(stats.chunks_in_use, chunks_in_use);
    ASSERT_EQ(stats.nodes, static_cast<std::int64_t>(nodes.size()));
  }

  // write_kv accepts a slot exactly when it holds a token of a live sequence (check() has just
  // computed which do). A live slot gets back the KV it holds; a refused one must change nothing.
  void probe_write_kv() {
    const CacheConfig& config = cache_.config();
    for (int probe = 0; probe < 4; ++probe) {
      const std::int64_t position = random_.integer(-chunk_size(), positions() + chunk_size() - 1);
      const Slot slot{static_cast<ChunkId>(position < 0 ? -1 : position / chunk_size()),
                      static_cast<std::int32_t>((position % chunk_size() + chunk_size()) % chunk_size())};
      const bool live = position >= 0 && position < positions() && live_[static_cast<std::size_t>(position)];
      const std::uint64_t prefix = live ? prefix_at_[static_cast<std::size_t>(position)] : 0;
      const std::vector<float> k(static_cast<std::size_t>(config.num_kv_heads * config.head_dim), k_value(prefix));
      const std::vector<float> v(static_cast<std::size_t>(config.num_kv_heads * config.head_dim), v_value(prefix));
      const std::vector<std::int64_t> shape{1, config.num_kv_heads, config.head_dim};
      const std::vector<Slot> slots{slot};
      try {
        cache_.write_kv(0, slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                        ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
        ASSERT_TRUE(live) << "write_kv accepted slot (" << slot.chunk << ", " << slot.offset << "), which no live sequence holds";
      } catch (const Error& error) {
        ASSERT_FALSE(live) << "write_kv refused live slot (" << slot.chunk << ", " << slot.offset << "): " << error.what();
        ASSERT_EQ(error.code(), ErrorCode::invalid_argument) << error.what();
      }
    }
  }

  PrefixCache cache_;
  harness::Random random_;
  std::vector<ModelSequence> model_;
  std::vector<SeqId> removed_;
  std::vector<std::uint64_t> prefix_at_;  // by pool position, for live positions: the prefix whose KV it holds
  std::vector<bool> live_;                // by pool position: holds a token of a live sequence
  Counts counts_;
};

TEST(PrefixCacheModel, RandomCallsAgreeWithAModelOfTokenLists) {
  const auto operations = static_cast<std::int64_t>(environment_or("CHUNKTREE_MODEL_OPS", kOperations));
  const std::uint64_t seed = environment_or("CHUNKTREE_MODEL_SEED", kSeed);
  CacheConfig config;
  config.num_kv_heads = 1;
  config.head_dim = 64;
  config.chunk_size = 16;
  config.dtype = DType::f32;
  config.capacity_chunks = 40;  // small: some calls run out of chunks
  ModelRun run(config, seed);
  for (std::int64_t op = 1; op <= operations; ++op) {
    SCOPED_TRACE("operation " + std::to_string(op) + " of seed " + std::to_string(seed));
    run.step();
    if (op % kClearEvery == 0) run.clear();
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
  run.clear();
  const Counts& c = run.counts();
  std::cout << "[ model    ] " << operations << " operations, seed " << seed << ": " << c.adds << " adds, " << c.appends << " appends, "
            << c.forks << " forks, " << c.removes << " removes, " << c.capacity_failures << " out of capacity, " << c.bad_calls
            << " bad calls, " << c.clears << " clears\n";
  EXPECT_GT(c.capacity_failures, 0);  // the budget exercises exhaustion
}

}  // namespace
}  // namespace chunktree
