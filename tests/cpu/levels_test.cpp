// The levels API (chunktree/levels.hpp) on the CPU backend against the fp64 reference over the
// KV each query token sees, and its argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/levels.hpp"
#include "support/levels.hpp"
#include "support/nan_inputs.hpp"

namespace chunktree {
namespace {

using testing::Blob;
using testing::HostLevels;
using testing::HostSegment;
using testing::HostShared;
using testing::LevelsOptions;

struct Outputs {
  std::vector<float> out;  // [tokens, q_heads, head_dim], as stored in the out dtype
  std::vector<float> lse;  // [tokens, q_heads]
  Blob out_blob;
};

// Runs cpu::attend_levels on the host levels into poisoned outputs (all bits set: NaN).
Outputs run_levels(const HostLevels& host, const std::vector<float>& q, int q_heads, DType q_dtype, DType out_dtype,
                   AttentionParams params = {}, bool with_lse = true) {
  const Levels levels = host.view();
  const Blob q_blob = testing::to_blob(q, q_dtype);
  const std::vector<std::int64_t> shape{host.tokens(), q_heads, host.head_dim};
  Outputs got;
  got.out_blob = Blob(out_dtype, static_cast<std::int64_t>(q.size()));
  got.lse.assign(static_cast<std::size_t>(host.tokens() * q_heads), std::numeric_limits<float>::quiet_NaN());
  if (params.num_threads == 0) params.num_threads = 2;
  const TensorView lse_view = with_lse ? TensorView{got.lse.data(), DType::f32, Device::cpu, {host.tokens(), q_heads}} : TensorView{};
  cpu::attend_levels(levels, ConstTensorView(q_blob.data(), q_dtype, Device::cpu, shape), TensorView{got.out_blob.data(), out_dtype, Device::cpu, shape},
                     lse_view, params);
  for (std::int64_t i = 0; i < got.out_blob.numel; ++i) got.out.push_back(got.out_blob.get(i));
  return got;
}

double out_tolerance(DType out_dtype) { return out_dtype == DType::f32 ? 2e-5 : (out_dtype == DType::bf16 ? 8e-3 : 1e-3); }

// Every query token's out and lse against the fp64 reference (the same tolerances as the cache path).
void expect_matches_reference(const HostLevels& host, const std::vector<float>& q, int q_heads, const Outputs& got, DType out_dtype,
                              double scale = 0.0, bool check_lse = true) {
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(host.head_dim));
  std::vector<double> expected;
  std::vector<double> expected_lse;
  host.reference(q, q_heads, scale, expected, expected_lse);
  const std::size_t per_token = static_cast<std::size_t>(q_heads * host.head_dim);
  const double tolerance = out_tolerance(out_dtype);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(got.out[i], expected[i], tolerance * std::max(1.0, std::abs(expected[i])))
        << "sequence " << i / per_token / static_cast<std::size_t>(host.queries) << " query token "
        << i / per_token % static_cast<std::size_t>(host.queries) << " element " << i % per_token;
  }
  if (!check_lse) return;
  for (std::size_t i = 0; i < expected_lse.size(); ++i) {
    const double e = expected_lse[i];
    ASSERT_NEAR(got.lse[i], e, 2e-5 * std::max(1.0, std::abs(e)))
        << "token " << i / static_cast<std::size_t>(q_heads) << " head " << i % static_cast<std::size_t>(q_heads);
  }
}

// Runs and checks one levels call with random q.
void check_levels(const HostLevels& host, int q_heads, harness::Random& random, DType q_dtype = DType::f32, DType out_dtype = DType::f32) {
  const std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  expect_matches_reference(host, q, q_heads, run_levels(host, q, q_heads, q_dtype, out_dtype), out_dtype);
}

std::string describe(const HostLevels& host) {
  std::string text = std::to_string(host.num_seqs) + " seqs × " + std::to_string(host.queries) + " queries, levels:";
  for (const auto& level : host.levels) {
    text += " {";
    for (const HostShared& shared : level) {
      text += " " + std::to_string(shared.kv.length) + (shared.kv.pages.empty() ? "" : "p" + std::to_string(shared.kv.shape[1])) + "@[" +
              std::to_string(shared.seq_begin) + "," + std::to_string(shared.seq_end) + ")";
    }
    text += " }";
  }
  text += " own:";
  for (const HostSegment& own : host.own) text += " " + std::to_string(own.length) + (own.pages.empty() ? "" : "p");
  return text;
}

struct Config {
  int q_heads;
  int kv_heads;
  int head_dim;
  DType dtype;
};

TEST(CpuLevels, MatchesTheReferenceOnRandomLevels) {
  const Config configs[] = {
      {1, 1, 64, DType::bf16}, {4, 1, 128, DType::f16}, {8, 2, 256, DType::f32},
      {4, 4, 64, DType::bf16}, {8, 2, 128, DType::bf16}, {4, 1, 256, DType::f16},
  };
  std::uint64_t seed = 1000;
  int run = 0;
  for (int queries : {1, 2, 5, 64}) {
    const std::int64_t max_seqs = queries == 1 ? 10 : (queries == 2 ? 7 : (queries == 5 ? 5 : 3));
    for (const Config& config : configs) {
      for (int round = 0; round < 2; ++round) {
        harness::Random random(++seed);
        LevelsOptions options;
        options.num_seqs = random.integer(1, max_seqs);
        options.queries = queries;
        options.kv_heads = config.kv_heads;
        options.head_dim = config.head_dim;
        options.dtype = config.dtype;
        options.num_levels = static_cast<int>(random.integer(1, 3));
        options.max_segment = queries == 64 ? 24 : 40;
        options.max_own = queries == 64 ? 12 : 20;
        options.own = queries > 1 || round == 0;
        const HostLevels host = testing::random_levels(random, options);
        // q in fp32 or in the KV's dtype, out in every dtype.
        const DType q_dtype = (run % 2 == 0) ? DType::f32 : config.dtype;
        const DType out_dtype = run % 3 == 0 ? DType::f32 : (run % 3 == 1 ? DType::bf16 : DType::f16);
        ++run;
        SCOPED_TRACE(::testing::Message() << "q_heads " << config.q_heads << " kv_heads " << config.kv_heads << " d " << config.head_dim
                                          << " " << to_string(config.dtype) << " q " << to_string(q_dtype) << " out "
                                          << to_string(out_dtype) << ": " << describe(host));
        check_levels(host, config.q_heads, random, q_dtype, out_dtype);
      }
    }
  }
}

HostSegment contiguous(harness::Random& random, const HostLevels& host, std::int64_t length, std::int64_t extra = 0) {
  return testing::random_segment(random, host.dtype, host.kv_heads, host.head_dim, length, 0, extra);
}
HostSegment paged(harness::Random& random, const HostLevels& host, std::int64_t length, int page_size, std::int64_t extra = 0) {
  return testing::random_segment(random, host.dtype, host.kv_heads, host.head_dim, length, page_size, extra);
}

HostLevels empty_levels(std::int64_t num_seqs, int queries, int kv_heads = 2, int head_dim = 64, DType dtype = DType::bf16) {
  HostLevels host;
  host.num_seqs = num_seqs;
  host.queries = queries;
  host.kv_heads = kv_heads;
  host.head_dim = head_dim;
  host.dtype = dtype;
  return host;
}

TEST(CpuLevels, OddShapes) {
  harness::Random random(77);
  const int q_heads = 4;
  {  // one sequence, a one-token shared segment and one own token
    HostLevels host = empty_levels(1, 1);
    host.levels = {{HostShared{contiguous(random, host, 1), 0, 1}}};
    host.own.push_back(contiguous(random, host, 1));
    SCOPED_TRACE("one sequence, one-token segment");
    check_levels(host, q_heads, random);
  }
  {  // one-token segments on three levels, and a sequence whose only shared KV is one token
    HostLevels host = empty_levels(3, 2);
    host.levels = {{HostShared{contiguous(random, host, 1), 0, 3}},
                   {HostShared{paged(random, host, 1, 16), 0, 2}},
                   {HostShared{contiguous(random, host, 1), 1, 2}, HostShared{paged(random, host, 1, 7, 2), 1, 3}}};
    for (int s = 0; s < 3; ++s) host.own.push_back(contiguous(random, host, 2 + s));
    SCOPED_TRACE("one-token segments");
    check_levels(host, q_heads, random);
  }
  {  // own KV of exactly queries_per_seq tokens: the first query token sees one own token
    for (int queries : {2, 5, 64}) {
      HostLevels host = empty_levels(2, queries);
      host.levels = {{HostShared{contiguous(random, host, 9), 0, 2}}};
      host.own.push_back(contiguous(random, host, queries));
      host.own.push_back(paged(random, host, queries, 7));
      SCOPED_TRACE(::testing::Message() << "own == queries_per_seq " << queries);
      check_levels(host, q_heads, random);
    }
  }
  {  // no own KV at all with one query token: everything shared
    HostLevels host = empty_levels(4, 1);
    host.levels = {{HostShared{contiguous(random, host, 20), 0, 4}}, {HostShared{paged(random, host, 33, 16), 1, 3}}};
    SCOPED_TRACE("no own KV");
    check_levels(host, q_heads, random);
  }
  {  // empty own parts next to non-empty ones
    HostLevels host = empty_levels(3, 1);
    host.levels = {{HostShared{contiguous(random, host, 5), 0, 3}}};
    host.own.push_back(HostSegment{});
    host.own.push_back(contiguous(random, host, 4));
    host.own.push_back(HostSegment{});
    SCOPED_TRACE("some own parts empty");
    check_levels(host, q_heads, random);
  }
  {  // own KV only: plain causal attention over 64 query tokens (no levels)
    HostLevels host = empty_levels(2, 64);
    host.own.push_back(contiguous(random, host, 64));
    host.own.push_back(paged(random, host, 100, 16, 1));
    SCOPED_TRACE("own only, 64 query tokens");
    check_levels(host, q_heads, random);
  }
  {  // every sequence reads several segments of one level, and a level reads one segment twice
    HostLevels host = empty_levels(5, 2, 1, 128, DType::f16);
    host.levels = {{HostShared{contiguous(random, host, 3), 0, 5}, HostShared{paged(random, host, 17, 16), 0, 5},
                    HostShared{contiguous(random, host, 8, 3), 2, 4}, HostShared{paged(random, host, 30, 7, 1), 4, 5}}};
    host.levels.push_back({host.levels[0][1]});
    for (int s = 0; s < 5; ++s) host.own.push_back(contiguous(random, host, 2 + 3 * s, 2));
    SCOPED_TRACE("several segments per sequence and level");
    check_levels(host, 8, random, DType::f16, DType::bf16);
  }
  {  // a page larger than the segment; pages of one token
    HostLevels host = empty_levels(2, 1);
    host.levels = {{HostShared{paged(random, host, 5, 16), 0, 2}, HostShared{paged(random, host, 9, 1, 3), 1, 2}}};
    host.own.push_back(paged(random, host, 3, 1));
    host.own.push_back(paged(random, host, 1, 16, 2));
    SCOPED_TRACE("odd page sizes");
    check_levels(host, q_heads, random);
  }
}

// NaN in q or in a shared key reaches the outputs it touches as NaN, not as the empty state.
TEST(CpuLevels, NanInQueriesOrKeysReachesTheOutput) {
  harness::Random random(13);
  const int q_heads = 4;
  HostLevels host = empty_levels(3, 1);  // 2 kv heads
  host.levels = {{HostShared{contiguous(random, host, 40), 0, 3}}};
  for (int s = 0; s < 3; ++s) host.own.push_back(contiguous(random, host, 5 + s));
  const int seqs = static_cast<int>(host.num_seqs);
  std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  q[(1 * q_heads + 2) * host.head_dim + 7] = std::numeric_limits<float>::quiet_NaN();
  const Outputs with_nan_query = run_levels(host, q, q_heads, DType::f32, DType::f32);
  {
    SCOPED_TRACE("NaN in q of sequence 1, head 2");
    testing::expect_nan_exactly_where(with_nan_query.out, with_nan_query.lse, seqs, q_heads, host.head_dim,
                                      [](int s, int h) { return s == 1 && h == 2; });
  }
  host.levels[0][0].kv.k.set(17 * host.kv_heads * host.head_dim + host.head_dim + 3, std::numeric_limits<float>::quiet_NaN());  // token 17, kv head 1
  q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const Outputs with_nan_key = run_levels(host, q, q_heads, DType::f32, DType::f32);
  SCOPED_TRACE("NaN in a shared key of kv head 1");
  testing::expect_nan_exactly_where(with_nan_key.out, with_nan_key.lse, seqs, q_heads, host.head_dim,
                                    [&](int, int h) { return h / (q_heads / host.kv_heads) == 1; });
}

// Segments of one call may share one page pool (an engine's paged KV), each listing its pages.
TEST(CpuLevels, SegmentsShareOnePagePool) {
  harness::Random random(5);
  HostLevels host = empty_levels(3, 2);
  const int page_size = 16;
  const std::int64_t num_pages = 12;
  const std::int64_t token_elements = host.kv_heads * host.head_dim;
  const Blob k_pool = testing::random_blob(random, host.dtype, num_pages * page_size * token_elements);
  const Blob v_pool = testing::random_blob(random, host.dtype, num_pages * page_size * token_elements);
  auto segment = [&](std::int64_t length, std::vector<std::int32_t> pages) {
    HostSegment s;
    s.length = length;
    s.pages = std::move(pages);
    s.shape = {num_pages, page_size, host.kv_heads, host.head_dim};
    s.k = k_pool;
    s.v = v_pool;
    for (std::int64_t t = 0; t < length; ++t) {
      const std::int64_t slot = s.pages[static_cast<std::size_t>(t / page_size)] * page_size + t % page_size;
      for (std::int64_t e = 0; e < token_elements; ++e) {
        s.k_tokens.push_back(k_pool.get(slot * token_elements + e));
        s.v_tokens.push_back(v_pool.get(slot * token_elements + e));
      }
    }
    return s;
  };
  host.levels = {{HostShared{segment(40, {7, 2, 9}), 0, 3}}, {HostShared{segment(16, {4}), 0, 2}, HostShared{segment(20, {0, 11}), 2, 3}}};
  host.own = {segment(5, {3}), segment(18, {10, 1}), segment(2, {6})};
  // Views of one pool: point every segment at the same blobs.
  Levels levels = host.view();
  for (auto& level : levels.levels) {
    for (SharedSegment& shared : level) shared.kv.k.data = k_pool.data(), shared.kv.v.data = v_pool.data();
  }
  for (KvSegment& own : levels.own) own.k.data = k_pool.data(), own.v.data = v_pool.data();
  const int q_heads = 4;
  const std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  Outputs got;
  got.out.assign(q.size(), std::numeric_limits<float>::quiet_NaN());
  got.lse.assign(static_cast<std::size_t>(host.tokens() * q_heads), std::numeric_limits<float>::quiet_NaN());
  const std::vector<std::int64_t> shape{host.tokens(), q_heads, host.head_dim};
  cpu::attend_levels(levels, ConstTensorView(q.data(), DType::f32, Device::cpu, shape), TensorView{got.out.data(), DType::f32, Device::cpu, shape},
                     TensorView{got.lse.data(), DType::f32, Device::cpu, {host.tokens(), q_heads}}, AttentionParams{0, 0.0f, 2});
  expect_matches_reference(host, q, q_heads, got, DType::f32);
}

TEST(CpuLevels, ScaleWithoutLseAndThreadCounts) {
  harness::Random random(9);
  LevelsOptions options;
  options.num_seqs = 6;
  options.queries = 3;
  options.kv_heads = 2;
  options.head_dim = 128;
  options.num_levels = 3;
  const HostLevels host = testing::random_levels(random, options);
  SCOPED_TRACE(describe(host));
  const int q_heads = 8;
  const std::vector<float> q = testing::random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  AttentionParams params;
  params.scale = 0.37f;
  params.num_threads = 1;
  const Outputs one = run_levels(host, q, q_heads, DType::f32, DType::f32, params);
  expect_matches_reference(host, q, q_heads, one, DType::f32, static_cast<double>(0.37f));
  // The same bits with any number of threads, and without lse.
  for (int threads : {2, 3, 7}) {
    params.num_threads = threads;
    const Outputs again = run_levels(host, q, q_heads, DType::f32, DType::f32, params, /*with_lse=*/threads != 3);
    ASSERT_EQ(std::memcmp(one.out.data(), again.out.data(), one.out.size() * sizeof(float)), 0) << threads << " threads";
    if (threads != 3) {
      ASSERT_EQ(std::memcmp(one.lse.data(), again.lse.data(), one.lse.size() * sizeof(float)), 0) << threads << " threads";
    } else {
      for (float lse : again.lse) ASSERT_TRUE(std::isnan(lse)) << "lse was written though none was passed";
    }
  }
}

// ---- Errors ----------------------------------------------------------------------------------

void expect_error(const std::function<void()>& call, ErrorCode code, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "expected an error mentioning \"" << fragment << "\"";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << "message: " << error.what() << "\nexpected: " << fragment;
  }
}

// A valid call (2 sequences, 2 query tokens each, 2 kv heads, 4 q heads, d 64, bf16) that each
// error case breaks in one place.
struct ErrorFixture {
  harness::Random random{31};
  HostLevels host = empty_levels(2, 2);
  std::vector<float> q;
  std::vector<float> out;
  std::vector<float> lse;
  Levels levels;

  ErrorFixture() {
    host.levels = {{HostShared{contiguous(random, host, 5, 1), 0, 2}}, {HostShared{paged(random, host, 7, 4, 1), 1, 2}}};
    host.own = {contiguous(random, host, 3), contiguous(random, host, 2)};
    levels = host.view();
    q = testing::random_queries(random, 4, 4, 64, DType::bf16);
    out.assign(q.size(), std::numeric_limits<float>::quiet_NaN());  // poisoned
    lse.assign(4 * 4, std::numeric_limits<float>::quiet_NaN());
  }
  ConstTensorView q_view() const { return ConstTensorView(q.data(), DType::f32, Device::cpu, {4, 4, 64}); }
  TensorView out_view() { return TensorView{out.data(), DType::f32, Device::cpu, {4, 4, 64}}; }
  TensorView lse_view() { return TensorView{lse.data(), DType::f32, Device::cpu, {4, 4}}; }
  void run() { cpu::attend_levels(levels, q_view(), out_view(), lse_view()); }
  // Runs with `change` applied to a copy of the valid levels and expects invalid_argument.
  void expect_invalid(const std::function<void(Levels&)>& change, const std::string& fragment) {
    Levels changed = host.view();
    change(changed);
    SCOPED_TRACE(fragment);
    expect_error([&] { cpu::attend_levels(changed, q_view(), out_view(), lse_view()); }, ErrorCode::invalid_argument, fragment);
  }
};

TEST(CpuLevelsErrors, TheValidCallRuns) {
  ErrorFixture f;
  EXPECT_NO_THROW(f.run());
  // and matches the reference (the fixture is a real call)
  Outputs got;
  got.out = f.out;
  got.lse = f.lse;
  expect_matches_reference(f.host, f.q, 4, got, DType::f32);
}

TEST(CpuLevelsErrors, SegmentsAndRanges) {
  ErrorFixture f;
  f.expect_invalid([](Levels& l) { l.levels[0][0].kv.length = 0; }, "level 0 segment 0 is empty");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.length = -3; }, "level 1 segment 0 is empty");
  f.expect_invalid([](Levels& l) { l.own[0].length = -1; }, "own[0] has length -1");
  f.expect_invalid([](Levels& l) { l.levels[1][0].seq_begin = 1, l.levels[1][0].seq_end = 1; }, "read by sequences [1, 1)");
  f.expect_invalid([](Levels& l) { l.levels[1][0].seq_begin = 1, l.levels[1][0].seq_end = 0; }, "read by sequences [1, 0)");
  f.expect_invalid([](Levels& l) { l.levels[0][0].seq_end = 3; }, "read by sequences [0, 3)");
  f.expect_invalid([](Levels& l) { l.levels[0][0].seq_begin = -1; }, "read by sequences [-1, 2)");
  f.expect_invalid([](Levels& l) { l.levels[0][0].kv.k.data = nullptr; }, "level 0 segment 0.k has no data");
  f.expect_invalid([](Levels& l) { l.own[1].v.data = nullptr; }, "own[1].v has no data");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.v.device = Device::cuda; }, "level 1 segment 0.v is on the cuda");
}

TEST(CpuLevelsErrors, Shapes) {
  ErrorFixture f;
  f.expect_invalid([](Levels& l) { l.own[0].k.shape = {3, 2, 32}; }, "own[0].k has shape [3, 2, 32]");
  f.expect_invalid([](Levels& l) { l.own[0].v.shape = {3, 1, 64}; }, "own[0].v has shape [3, 1, 64]");
  f.expect_invalid([](Levels& l) { l.levels[0][0].kv.k.shape = {7, 2, 64}; }, "level 0 segment 0.k has shape [7, 2, 64] but .v has [6, 2, 64]");
  f.expect_invalid([](Levels& l) { l.levels[0][0].kv.length = 7; }, "hold 6 tokens");
  f.expect_invalid([](Levels& l) { l.own[1].k.shape = {1, 2, 2, 64}; }, "own[1].k has shape [1, 2, 2, 64]");
  // A paged segment needs page pools of rank 4.
  f.expect_invalid(
      [](Levels& l) {
        l.levels[1][0].kv.k.shape = {12, 2, 64};
        l.levels[1][0].kv.v.shape = {12, 2, 64};
      },
      "level 1 segment 0.k has shape [12, 2, 64]; expected [num_pages, page_size, 2, 64]");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.v.shape = {4, 4, 2, 64}; }, "but .v has [4, 4, 2, 64]");
  // The first segment with data sets the kv heads: q's heads must be a multiple.
  f.expect_invalid(
      [](Levels& l) {
        for (KvSegment* s : {&l.levels[0][0].kv, &l.levels[1][0].kv, &l.own[0], &l.own[1]}) {
          s->k.shape[s->k.shape.size() - 2] = 3;
          s->v.shape[s->v.shape.size() - 2] = 3;
        }
      },
      "not a positive multiple of the KV's 3 kv heads");
}

TEST(CpuLevelsErrors, Pages) {
  ErrorFixture f;  // level 1 segment 0: 7 tokens in pages of 4 from a pool of 3 pages
  ASSERT_EQ(f.levels.levels[1][0].kv.pages.size(), 2u);
  ASSERT_EQ(f.levels.levels[1][0].kv.k.shape[0], 3);
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.pages[1] = 3; }, "page 1 is 3; the pool has pages 0..2");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.pages[0] = -1; }, "page 0 is -1; the pool has pages 0..2");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.pages.pop_back(); }, "lists 1 pages; 7 tokens in pages of 4 need exactly 2");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.pages.push_back(0); }, "lists 3 pages; 7 tokens in pages of 4 need exactly 2");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.length = 9; }, "9 tokens in pages of 4 need exactly 3");
}

TEST(CpuLevelsErrors, OwnKvAndCoverage) {
  ErrorFixture f;
  f.expect_invalid([](Levels& l) { l.own[1].length = 1; }, "own[1] has 1 tokens, fewer than queries_per_seq (2)");
  f.expect_invalid([](Levels& l) { l.own[0] = KvSegment{}; }, "own[0] has 0 tokens, fewer than queries_per_seq (2)");
  f.expect_invalid([](Levels& l) { l.own.pop_back(); }, "own has 1 entries; expected one per sequence (2)");
  f.expect_invalid([](Levels& l) { l.own.clear(); }, "with queries_per_seq > 1 every sequence needs its own KV");
  f.expect_invalid([](Levels& l) { l.queries_per_seq = 0; }, "queries_per_seq must be at least 1, got 0");
  f.expect_invalid([](Levels& l) { l.queries_per_seq = 3; }, "not a multiple of queries_per_seq (3)");
  f.expect_invalid(
      [](Levels& l) {
        l.levels.clear();
        l.own.clear();
      },
      "no KV at all");
  // With one query token an own part may be empty, but every sequence must see some KV.
  f.expect_invalid(
      [](Levels& l) {
        l.queries_per_seq = 1;  // q's 4 tokens are 4 sequences
        l.levels.clear();
        l.own = {l.own[0], l.own[1], l.own[0], KvSegment{}};
      },
      "sequence 3 reads no KV");
}

// An empty batch (no sequences, no KV) is a call that writes nothing, not an error.
TEST(CpuLevels, AnEmptyBatchWritesNothing) {
  const Levels empty;
  std::vector<float> q(1);
  std::vector<float> out(1);
  std::vector<float> lse(1);
  const ConstTensorView no_q(q.data(), DType::f32, Device::cpu, {0, 8, 64});
  const TensorView no_out{out.data(), DType::f32, Device::cpu, {0, 8, 64}};
  const TensorView no_lse{lse.data(), DType::f32, Device::cpu, {0, 8}};
  cpu::attend_levels(empty, no_q, no_out, no_lse, AttentionParams{});
  // Its other checks still hold: own KV for sequences that are not there is an error.
  Levels stray = empty;
  stray.own.resize(3);
  expect_error([&] { cpu::attend_levels(stray, no_q, no_out, no_lse, AttentionParams{}); }, ErrorCode::invalid_argument,
               "own has 3 entries; expected one per sequence (0) or none");
}

TEST(CpuLevelsErrors, DtypesAndDevices) {
  ErrorFixture f;
  f.expect_invalid([](Levels& l) { l.own[1].k.dtype = DType::f16; }, "own[1].k is f16 but the call's KV is bf16; all K and V of one call share a dtype");
  f.expect_invalid([](Levels& l) { l.levels[1][0].kv.v.dtype = DType::f32; }, "level 1 segment 0.v is f32 but the call's KV is bf16");
  f.expect_invalid([](Levels& l) { l.own[0].k.device = Device::cuda; }, "own[0].k is on the cuda; this backend needs it on the cpu");
}

TEST(CpuLevelsErrors, QOutAndLse) {
  ErrorFixture f;
  auto run = [&](const ConstTensorView& q, const TensorView& out, const TensorView& lse, AttentionParams params = {}) {
    return [&f, q, out, lse, params] { cpu::attend_levels(f.levels, q, out, lse, params); };
  };
  const TensorView out = f.out_view();
  const TensorView lse = f.lse_view();
  const ConstTensorView q = f.q_view();
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {3, 4, 64}), out, lse), ErrorCode::invalid_argument,
               "q has 3 tokens, not a multiple of queries_per_seq (2)");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {16, 64}), out, lse), ErrorCode::invalid_argument, "q has shape [16, 64]");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {-4, 4, 64}), out, lse), ErrorCode::invalid_argument,
               "a token count of at least 0");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {4, 0, 64}), out, lse), ErrorCode::invalid_argument,
               "1..4096 heads");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {2, 4, 64}), out, lse), ErrorCode::invalid_argument,
               "read by sequences [0, 2)");  // 2 tokens = 1 sequence, but level 0 is read by 2
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {4, 2, 128}), out, lse), ErrorCode::invalid_argument, "has shape");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {2, 4, 96}), out, lse), ErrorCode::invalid_argument,
               "head_dim 96 is not 64, 128 or 256");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cpu, {4, 3, 64}), out, lse), ErrorCode::invalid_argument,
               "q has 3 heads, not a positive multiple of the KV's 2 kv heads");
  expect_error(run(ConstTensorView(f.q.data(), DType::f32, Device::cuda, {4, 4, 64}), out, lse), ErrorCode::invalid_argument, "q is on the cuda");
  expect_error(run(ConstTensorView(nullptr, DType::f32, Device::cpu, {4, 4, 64}), out, lse), ErrorCode::invalid_argument, "q has no data");
  expect_error(run(q, TensorView{f.out.data(), DType::f32, Device::cpu, {2, 4, 64}}, lse), ErrorCode::invalid_argument,
               "out has shape [2, 4, 64]; expected [4, 4, 64]");
  expect_error(run(q, TensorView{f.out.data(), DType::f32, Device::cpu, {4, 4, 128}}, lse), ErrorCode::invalid_argument, "out has shape");
  expect_error(run(q, TensorView{f.out.data(), DType::f32, Device::cuda, {4, 4, 64}}, lse), ErrorCode::invalid_argument, "out is on the cuda");
  expect_error(run(q, TensorView{nullptr, DType::f32, Device::cpu, {4, 4, 64}}, lse), ErrorCode::invalid_argument, "out has no data");
  expect_error(run(q, out, TensorView{f.lse.data(), DType::f32, Device::cpu, {2, 4}}), ErrorCode::invalid_argument, "lse has shape [2, 4]; expected [4, 4]");
  expect_error(run(q, out, TensorView{f.lse.data(), DType::f32, Device::cpu, {4, 4, 1}}), ErrorCode::invalid_argument, "lse has shape");
  expect_error(run(q, out, TensorView{f.lse.data(), DType::bf16, Device::cpu, {4, 4}}), ErrorCode::invalid_argument, "lse has dtype bf16; expected f32");
  AttentionParams bad_scale;
  bad_scale.scale = std::numeric_limits<float>::infinity();
  expect_error(run(q, out, lse, bad_scale), ErrorCode::invalid_argument, "scale must be finite");
}

// A page pool whose pages hold no tokens cannot hold a segment: a clear error, not a crash.
// Disabled: check_segment (src/schedule/levels.cpp) divides by the page size before checking it,
// so this raises SIGFPE instead of an Error (see the helper's report).
TEST(CpuLevelsErrors, PagesOfZeroTokens) {
  ErrorFixture f;
  f.expect_invalid(
      [](Levels& l) {
        l.levels[1][0].kv.k.shape = {3, 0, 2, 64};
        l.levels[1][0].kv.v.shape = {3, 0, 2, 64};
      },
      "level 1 segment 0");
}

}  // namespace
}  // namespace chunktree
