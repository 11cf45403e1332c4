// The levels cases both backends must pass (chunktree/levels.hpp), against the fp64 reference over
// the KV each query token sees, and the argument checks both backends share (check_levels in
// src/schedule/levels.cpp): one test body per case, run on the CPU backend in the host tests and on
// the CUDA backend in the GPU tests (this file is built into both binaries;
// CHUNKTREE_TESTS_ON_CUDA picks the backend). Each backend keeps its own shapes and seeds where
// they differ (the GPU's are longer, to be split into items) and its own tolerances
// (support/backend.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "support/backend_levels.hpp"
#include "support/expect_error.hpp"
#include "support/nan_inputs.hpp"

namespace chunktree::testing {
namespace {

class BackendLevels : public BackendTest {};

struct Heads {
  int q_heads;
  int kv_heads;
  int head_dim;
  DType dtype;
};

TEST_P(BackendLevels, MatchesTheReferenceOnRandomLevels) {
  const std::vector<Heads> configs = on<std::vector<Heads>>(
      {{1, 1, 64, DType::bf16}, {4, 1, 128, DType::f16}, {8, 2, 256, DType::f32}, {4, 4, 64, DType::bf16}, {8, 2, 128, DType::bf16},
       {4, 1, 256, DType::f16}},
      {{1, 1, 64, DType::bf16}, {4, 1, 128, DType::f16}, {8, 2, 256, DType::bf16}, {4, 4, 64, DType::f16}, {8, 2, 128, DType::bf16},
       {16, 4, 64, DType::bf16}, {8, 8, 256, DType::f16}});
  std::uint64_t seed = on<std::uint64_t>(1000, 2000);
  int run = 0;
  for (int queries : {1, 2, 5, 64}) {
    const std::int64_t max_seqs = queries == 1 ? on(10, 40) : (queries == 2 ? on(7, 24) : (queries == 5 ? on(5, 12) : on(3, 4)));
    for (const Heads& config : configs) {
      for (int round = 0; round < 2; ++round) {
        harness::Random random(++seed);
        LevelsOptions options;
        options.num_seqs = random.integer(1, max_seqs);
        options.queries = queries;
        options.kv_heads = config.kv_heads;
        options.head_dim = config.head_dim;
        options.dtype = config.dtype;
        options.num_levels = static_cast<int>(random.integer(1, 3));
        // The GPU's segments are long enough to be split into items.
        options.max_segment = queries == 64 ? on(24, 100) : on(40, round == 0 ? 60 : 300);
        options.max_own = queries == 64 ? on(12, 40) : on(20, 100);
        options.own = queries > 1 || round == 0;
        const HostLevels host = random_levels(random, options);
        // Out in every dtype; q in f32 or in the KV's dtype on the CPU, own KV packed or not on the GPU.
        const DType out_dtype = run % 3 == 0 ? DType::f32 : (run % 3 == 1 ? DType::bf16 : DType::f16);
        LevelsCallOptions call;
        call.cpu_q_dtype = run % 2 == 0 ? DType::f32 : config.dtype;
        call.pack_own_on_device = run % 2 == 1;
        ++run;
        check_levels(backend(), host, config.q_heads, random, out_dtype, call);
      }
    }
  }
}

TEST_P(BackendLevels, OddShapes) {
  harness::Random random(on(77, 37));
  for (int head_dim : {64, 128, 256}) {
    const int q_heads = 4;
    const int kv_heads = 2;
    {  // one sequence, a one-token shared segment and one own token
      HostLevels host = empty_levels(1, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 1), 0, 1}}};
      host.own.push_back(contiguous(random, host, 1));
      SCOPED_TRACE("one sequence, one-token segment");
      check_levels(backend(), host, q_heads, random);
    }
    {  // one-token segments on three levels, and a sequence whose only shared KV is one token
      HostLevels host = empty_levels(3, 2, kv_heads, head_dim, on(DType::bf16, DType::f16));
      host.levels = {{HostShared{contiguous(random, host, 1), 0, 3}},
                     {HostShared{paged(random, host, 1, 16), 0, 2}},
                     {HostShared{contiguous(random, host, 1), 1, 2}, HostShared{paged(random, host, 1, 7, 2), 1, 3}}};
      for (int s = 0; s < 3; ++s) host.own.push_back(contiguous(random, host, 2 + s));
      SCOPED_TRACE("one-token segments");
      check_levels(backend(), host, q_heads, random);
    }
    for (int queries : {2, 5, 64}) {  // own KV of exactly queries_per_seq tokens: the first query token sees one own token
      HostLevels host = empty_levels(2, queries, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 9), 0, 2}}};
      host.own.push_back(contiguous(random, host, queries));
      host.own.push_back(paged(random, host, queries, 7));
      SCOPED_TRACE(::testing::Message() << "own == queries_per_seq " << queries);
      check_levels(backend(), host, q_heads, random);
    }
    {  // no own KV at all with one query token: everything shared
      HostLevels host = empty_levels(4, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 20), 0, 4}}, {HostShared{paged(random, host, 33, 16), 1, 3}}};
      SCOPED_TRACE("no own KV");
      check_levels(backend(), host, q_heads, random);
    }
    {  // empty own parts next to non-empty ones
      HostLevels host = empty_levels(3, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{contiguous(random, host, 5), 0, 3}}};
      host.own = {HostSegment{}, contiguous(random, host, 4), HostSegment{}};
      SCOPED_TRACE("some own parts empty");
      check_levels(backend(), host, q_heads, random, DType::f32, LevelsCallOptions{.pack_own_on_device = true});
    }
    {  // own KV only: plain causal attention over 64 query tokens (no levels), on the GPU long enough to be split
      HostLevels host = empty_levels(2, 64, kv_heads, head_dim, on(DType::bf16, DType::f16));
      host.own.push_back(contiguous(random, host, 64));
      host.own.push_back(paged(random, host, on(100, 700), 16, 1));
      SCOPED_TRACE("own only, 64 query tokens");
      check_levels(backend(), host, q_heads, random);
    }
    {  // a page larger than the segment; pages of one token
      HostLevels host = empty_levels(2, 1, kv_heads, head_dim, DType::bf16);
      host.levels = {{HostShared{paged(random, host, 5, 16), 0, 2}, HostShared{paged(random, host, 9, 1, 3), 1, 2}}};
      host.own = {paged(random, host, 3, 1), paged(random, host, 1, 16, 2)};
      SCOPED_TRACE("odd page sizes");
      check_levels(backend(), host, q_heads, random);
    }
  }
}

// Every sequence reads several segments of one level, and a level reads one segment twice.
TEST_P(BackendLevels, SeveralSegmentsPerSequenceAndLevel) {
  harness::Random random(79);
  HostLevels host = empty_levels(5, 2, 1, 128, DType::f16);
  host.levels = {{HostShared{contiguous(random, host, 3), 0, 5}, HostShared{paged(random, host, 17, 16), 0, 5},
                  HostShared{contiguous(random, host, 8, 3), 2, 4}, HostShared{paged(random, host, 30, 7, 1), 4, 5}}};
  host.levels.push_back({host.levels[0][1]});
  for (int s = 0; s < 5; ++s) host.own.push_back(contiguous(random, host, 2 + 3 * s, 2));
  check_levels(backend(), host, 8, random, DType::bf16, LevelsCallOptions{.cpu_q_dtype = DType::f16});
}

// NaN in q or in a shared key reaches the outputs it touches as NaN, not as the empty state.
// Outputs start as zeros, so that an unwritten one cannot pass for a propagated NaN.
TEST_P(BackendLevels, NanInQueriesOrKeysReachesTheOutput) {
  harness::Random random(13);
  const int q_heads = 4;
  HostLevels host = empty_levels(3, 1);  // 2 kv heads
  host.levels = {{HostShared{contiguous(random, host, 40), 0, 3}}};
  for (int s = 0; s < 3; ++s) host.own.push_back(contiguous(random, host, 5 + s));
  const int seqs = static_cast<int>(host.num_seqs);
  std::vector<float> q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  q[(1 * q_heads + 2) * host.head_dim + 7] = std::numeric_limits<float>::quiet_NaN();
  {
    const Outputs got = LevelsCall(backend(), host, q, q_heads).run(DType::f32, true, Fill::zero);
    SCOPED_TRACE("NaN in q of sequence 1, head 2");
    expect_nan_exactly_where(got.out, got.lse, seqs, q_heads, host.head_dim, [](int s, int h) { return s == 1 && h == 2; });
  }
  host.levels[0][0].kv.k.set(17 * host.kv_heads * host.head_dim + host.head_dim + 3, std::numeric_limits<float>::quiet_NaN());  // token 17, kv head 1
  q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  const Outputs got = LevelsCall(backend(), host, q, q_heads).run(DType::f32, true, Fill::zero);
  SCOPED_TRACE("NaN in a shared key of kv head 1");
  expect_nan_exactly_where(got.out, got.lse, seqs, q_heads, host.head_dim, [&](int, int h) { return h / (q_heads / host.kv_heads) == 1; });
}

// A scale of the caller's, positive or negative (0 asks for 1/√d; the GPU's shared levels of 72
// query rows run on wgmma tiles, which fold a positive scale into the exponent); without lse the
// same out, and lse untouched.
TEST_P(BackendLevels, ScaleAndNoLse) {
  harness::Random random(on(9, 43));
  const HostLevels host = random_levels(random, on(LevelsOptions{.num_seqs = 6, .queries = 3, .kv_heads = 2, .head_dim = 128, .num_levels = 3},
                                                   LevelsOptions{.num_seqs = 9, .queries = 2, .kv_heads = 1, .head_dim = 64}));
  SCOPED_TRACE(describe(host));
  const int q_heads = on(8, 4);
  const std::vector<float> q = random_queries(random, host.tokens(), q_heads, host.head_dim, host.dtype);
  for (const float scale : {on(0.37f, 0.3f), -0.3f}) {
    SCOPED_TRACE(::testing::Message() << "scale " << scale);
    const LevelsCall call(backend(), host, q, q_heads, LevelsCallOptions{.params = AttentionParams{0, scale, 0}});
    const Outputs with_lse = call.run();
    expect_levels_match(backend(), host, q, q_heads, with_lse, DType::f32, static_cast<double>(scale));
    const Outputs without = call.run(DType::f32, /*with_lse=*/false);
    ASSERT_EQ(std::memcmp(with_lse.out.data(), without.out.data(), with_lse.out.size() * sizeof(float)), 0);
    for (float lse : without.lse) ASSERT_TRUE(std::isnan(lse)) << "lse was written though none was passed";
  }
}

// ---- Errors: what check_levels refuses, on either backend -------------------------------------

// A valid call in the backend's memory (support/backend_levels.hpp's levels_to_break) that each
// case breaks in one place. The checks are the CPU backend's attend_levels and the CUDA backend's
// LevelsPlan constructor (attend_levels then only holds q, out and lse to the plan).
class BackendLevelsErrors : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    harness::Random random(on(31, 47));
    host = levels_to_break(random);
    q = random_queries(random, 4, 4, 64, DType::bf16);
    call = std::make_unique<LevelsCall>(backend(), host, q, 4);
  }

  // The backend's device, and the one whose tensors it refuses, by name as errors give them.
  std::string device_name() const { return std::string(to_string(device_of(backend()))); }
  Device refused_device() const { return on(Device::cuda, Device::cpu); }
  std::string refused_device_name() const { return std::string(to_string(refused_device())); }
  // The call's q (its data and dtype) with another shape or device.
  ConstTensorView q_as(std::vector<std::int64_t> shape) const { return q_as(std::move(shape), device_of(backend())); }
  ConstTensorView q_as(std::vector<std::int64_t> shape, Device on_device) const {
    return ConstTensorView(call->q().data, call->q().dtype, on_device, std::move(shape));
  }

  // The backend's checks of `levels` with `q` (the call's own by default).
  void check(const Levels& levels, const ConstTensorView& q_view, const AttentionParams& params = {}) {
    if (backend() == Backend::cuda) {
      const cuda::LevelsPlan plan(levels, q_view, params);
      return;
    }
    cpu::attend_levels(levels, q_view, TensorView{out.data(), DType::f32, Device::cpu, {4, 4, 64}},
                       TensorView{lse.data(), DType::f32, Device::cpu, {4, 4}}, params);
  }
  void expect_invalid(const ConstTensorView& q_view, const std::string& fragment, const AttentionParams& params = {}) {
    SCOPED_TRACE(fragment);
    expect_error([&] { check(call->levels(), q_view, params); }, ErrorCode::invalid_argument, fragment);
  }
  // Checks the call with `change` applied to a copy of its levels and expects invalid_argument.
  void expect_invalid(const std::function<void(Levels&)>& change, const std::string& fragment) {
    Levels changed = call->levels();
    change(changed);
    SCOPED_TRACE(fragment);
    expect_error([&] { check(changed, call->q()); }, ErrorCode::invalid_argument, fragment);
  }

  HostLevels host;
  std::vector<float> q;
  std::unique_ptr<LevelsCall> call;
  std::vector<float> out = std::vector<float>(4 * 4 * 64, std::numeric_limits<float>::quiet_NaN());  // the CPU's outputs, poisoned
  std::vector<float> lse = std::vector<float>(4 * 4, std::numeric_limits<float>::quiet_NaN());
};

TEST_P(BackendLevelsErrors, TheValidCallRunsAndMatchesTheReference) {
  EXPECT_NO_THROW(check(call->levels(), call->q()));
  expect_levels_match(backend(), host, q, 4, call->run());
}

TEST_P(BackendLevelsErrors, SegmentsAndRanges) {
  expect_invalid([](Levels& l) { l.levels[0][0].kv.length = 0; }, "level 0 segment 0 is empty");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.length = -3; }, "level 1 segment 0 has length -3; lengths are ≥ 0");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.length = 0; }, "level 1 segment 0 is empty");
  expect_invalid([](Levels& l) { l.own[0].length = -1; }, "own[0] has length -1");
  expect_invalid([](Levels& l) { l.levels[1][0].seq_begin = 1, l.levels[1][0].seq_end = 1; }, "read by sequences [1, 1)");
  expect_invalid([](Levels& l) { l.levels[1][0].seq_begin = 1, l.levels[1][0].seq_end = 0; }, "read by sequences [1, 0)");
  expect_invalid([](Levels& l) { l.levels[0][0].seq_end = 3; }, "read by sequences [0, 3)");
  expect_invalid([](Levels& l) { l.levels[1][0].seq_end = 3; }, "read by sequences [1, 3)");
  expect_invalid([](Levels& l) { l.levels[0][0].seq_begin = -1; }, "read by sequences [-1, 2)");
  expect_invalid([](Levels& l) { l.levels[0][0].kv.k.data = nullptr; }, "level 0 segment 0.k has no data");
  expect_invalid([](Levels& l) { l.own[1].v.data = nullptr; }, "own[1].v has no data");
  expect_invalid([&](Levels& l) { l.levels[1][0].kv.v.device = refused_device(); }, "level 1 segment 0.v is in " + refused_device_name() + " memory");
}

TEST_P(BackendLevelsErrors, Shapes) {
  expect_invalid([](Levels& l) { l.own[0].k.shape = {3, 2, 32}; }, "own[0].k has shape [3, 2, 32]");
  expect_invalid([](Levels& l) { l.own[0].v.shape = {3, 1, 64}; }, "own[0].v has shape [3, 1, 64]");
  expect_invalid([](Levels& l) { l.levels[0][0].kv.k.shape = {7, 2, 64}; }, "level 0 segment 0.k has shape [7, 2, 64] but .v has [6, 2, 64]");
  expect_invalid([](Levels& l) { l.levels[0][0].kv.length = 7; }, "hold 6 tokens");
  expect_invalid([](Levels& l) { l.own[1].k.shape = {1, 2, 2, 64}; }, "own[1].k has shape [1, 2, 2, 64]");
  // A paged segment needs page pools of rank 4.
  expect_invalid(
      [](Levels& l) {
        l.levels[1][0].kv.k.shape = {12, 2, 64};
        l.levels[1][0].kv.v.shape = {12, 2, 64};
      },
      "level 1 segment 0.k has shape [12, 2, 64]; expected [num_pages, page_size, 2, 64]");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.v.shape = {4, 4, 2, 64}; }, "but .v has [4, 4, 2, 64]");
  // The first segment with data sets the kv heads: q's heads must be a multiple.
  expect_invalid(
      [](Levels& l) {
        for (KvSegment* s : {&l.levels[0][0].kv, &l.levels[1][0].kv, &l.own[0], &l.own[1]}) {
          s->k.shape[s->k.shape.size() - 2] = 3;
          s->v.shape[s->v.shape.size() - 2] = 3;
        }
      },
      "not a positive multiple of the KV's 3 kv heads");
}

TEST_P(BackendLevelsErrors, Pages) {  // level 1 segment 0: 7 tokens in pages of 4 from a pool of 3 pages
  ASSERT_EQ(call->levels().levels[1][0].kv.pages.size(), 2u);
  ASSERT_EQ(call->levels().levels[1][0].kv.k.shape[0], 3);
  expect_invalid([](Levels& l) { l.levels[1][0].kv.pages[1] = 3; }, "page 1 is 3; the pool has pages 0..2");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.pages[0] = -1; }, "page 0 is -1; the pool has pages 0..2");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.pages.pop_back(); }, "lists 1 pages; 7 tokens in pages of 4 need exactly 2");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.pages.push_back(0); }, "lists 3 pages; 7 tokens in pages of 4 need exactly 2");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.length = 9; }, "9 tokens in pages of 4 need exactly 3");
  expect_invalid(
      [](Levels& l) {
        l.own[0].length = 0;
        l.own[0].pages = {0, 7};
      },
      "own[0] lists 2 pages for 0 tokens; an empty segment lists none");
}

// A page pool whose pages hold no tokens cannot hold a segment: a clear error, not a division by zero.
TEST_P(BackendLevelsErrors, PagesOfZeroTokens) {
  expect_invalid(
      [](Levels& l) {
        l.levels[1][0].kv.k.shape = {3, 0, 2, 64};
        l.levels[1][0].kv.v.shape = {3, 0, 2, 64};
      },
      "level 1 segment 0 is paged with pages of 0 tokens");
}

TEST_P(BackendLevelsErrors, OwnKvAndCoverage) {
  expect_invalid([](Levels& l) { l.own[1].length = 1; }, "own[1] has 1 tokens, fewer than queries_per_seq (2)");
  expect_invalid([](Levels& l) { l.own[0] = KvSegment{}; }, "own[0] has 0 tokens, fewer than queries_per_seq (2)");
  expect_invalid([](Levels& l) { l.own.pop_back(); }, "own has 1 entries; expected one per sequence of the call's 2 sequences (q's 4 rows at queries_per_seq 2)");
  expect_invalid([](Levels& l) { l.own.clear(); }, "with queries_per_seq > 1 every sequence needs its own KV");
  expect_invalid([](Levels& l) { l.queries_per_seq = 0; }, "queries_per_seq must be at least 1, got 0");
  expect_invalid([](Levels& l) { l.queries_per_seq = 3; }, "not a multiple of queries_per_seq (3)");
  expect_invalid(
      [](Levels& l) {
        l.levels.clear();
        l.own.clear();
      },
      "no KV at all");
  // With one query token an own part may be empty, but every sequence must see some KV.
  expect_invalid(
      [](Levels& l) {
        l.queries_per_seq = 1;  // q's 4 tokens are 4 sequences
        l.levels.clear();
        l.own = {l.own[0], l.own[1], l.own[0], KvSegment{}};
      },
      "sequence 3 reads no KV");
}

TEST_P(BackendLevelsErrors, KvDtypesAndDevices) {
  expect_invalid([](Levels& l) { l.own[1].k.dtype = DType::f16; },
                 "own[1].k is f16 but the call's KV is bf16 (as level 0 segment 0's); all K and V of one call share a dtype");
  // The first segment with data gives the call's dtype and kv heads: the messages say which it is.
  expect_invalid(
      [](Levels& l) {
        for (ConstTensorView* tensor : {&l.levels[0][0].kv.k, &l.levels[0][0].kv.v}) tensor->shape[tensor->shape.size() - 2] = 4;
      },
      "level 1 segment 0.k has shape [3, 4, 2, 64]; expected [num_pages, page_size, 4, 64] (a page pool; kv heads as level 0 segment 0's)");
  expect_invalid([](Levels& l) { l.levels[1][0].kv.v.dtype = DType::f32; }, "level 1 segment 0.v is f32 but the call's KV is bf16");
  expect_invalid([&](Levels& l) { l.own[0].k.device = refused_device(); },
                 "own[0].k is in " + refused_device_name() + " memory; this backend needs it in " + device_name() + " memory");
}

// Values no real segment has (a dtype outside the enum, extents near 2^63) are clear errors, not
// wrapped arithmetic: the kv heads before they are narrowed, a page count without overflow, and the
// tokens a sequence reads summed without wrapping past the 2^31 − 1 limit.
TEST_P(BackendLevelsErrors, ValuesPastAnyRealSegment) {
  constexpr std::int64_t kTop = std::numeric_limits<std::int64_t>::max();
  expect_invalid(
      [](Levels& l) {
        l.levels[0][0].kv.k.dtype = static_cast<DType>(9);
        l.levels[0][0].kv.v.dtype = static_cast<DType>(9);
      },
      "level 0 segment 0.k has dtype value 9; expected f32, f16 or bf16");
  expect_invalid(
      [](Levels& l) {
        for (ConstTensorView* tensor : {&l.levels[0][0].kv.k, &l.levels[0][0].kv.v}) tensor->shape[1] = (std::int64_t{1} << 32) + 2;
      },
      "level 0 segment 0.k has shape [6, 4294967298, 64]; expected 1..4096 kv heads");
  expect_invalid(
      [](Levels& l) {
        l.levels[1][0].kv.k.shape[1] = kTop;
        l.levels[1][0].kv.v.shape[1] = kTop;
      },
      "lists 2 pages; 7 tokens in pages of 9223372036854775807 need exactly 1");
  expect_invalid(
      [](Levels& l) {
        l.levels[0][0].kv.length = kTop;
        l.levels[0][0].kv.k.shape[0] = kTop;
        l.levels[0][0].kv.v.shape[0] = kTop;
      },
      "a sequence reads more than 2^31 − 1 tokens");
}

TEST_P(BackendLevelsErrors, QShapeDeviceAndScale) {
  expect_invalid(q_as({3, 4, 64}), "q has 3 tokens, not a multiple of queries_per_seq (2)");
  expect_invalid(q_as({16, 64}), "q has shape [16, 64]");
  expect_invalid(q_as({-4, 4, 64}), "a token count of at least 0");
  expect_invalid(q_as({4, 0, 64}), "1..4096 heads");
  expect_invalid(q_as({2, 4, 64}), "read by sequences [0, 2)");  // 2 tokens = 1 sequence, but level 0 is read by 2
  expect_invalid(q_as({4, 2, 128}), "has shape");
  expect_invalid(q_as({2, 4, 96}), "head_dim 96 is not 64, 128 or 256");
  expect_invalid(q_as({2, 4, (std::int64_t{1} << 32) + 64}), "head_dim 4294967360 is not 64, 128 or 256");  // not read as 64
  expect_invalid(q_as({4, 3, 64}), "q has 3 heads, not a positive multiple of the KV's 2 kv heads");
  expect_invalid(q_as({4, 4, 64}, refused_device()), "q is in " + refused_device_name() + " memory");
  expect_invalid(call->q(), "scale must be finite", AttentionParams{0, std::numeric_limits<float>::infinity(), 0});
  expect_invalid(call->q(), "in magnitude (the kernels take scale", AttentionParams{0, 3e38f, 0});
  // q's shape gives the heads: params that say otherwise are refused, not silently overruled.
  expect_invalid(call->q(), "params.num_q_heads is 8 but q has 4 heads; pass 0 (q's shape gives them) or 4", AttentionParams{8, 0.0f, 0});
  EXPECT_NO_THROW(check(call->levels(), call->q(), AttentionParams{4, 0.0f, 0}));
}

CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(BackendLevels);
CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(BackendLevelsErrors);

}  // namespace
}  // namespace chunktree::testing
