// The paged cases both backends must pass (chunktree/paged.hpp: attention over an engine's page
// table and KV pools, read in place), against the fp64 reference over each query token's visible
// tokens gathered from the pages, and the checks both backends share (src/schedule/paged.cpp): one
// test body per case, run on the CPU backend in the host tests and on the CUDA backend in the GPU
// tests (this file is built into both binaries; CHUNKTREE_TESTS_ON_CUDA picks the backend). The
// GPU's tables are longer (to be split into items); tolerances are each backend's
// (support/backend.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "chunktree/paged.hpp"
#include "support/address_space.hpp"
#include "support/expect_error.hpp"
#include "support/paged.hpp"

namespace chunktree::testing {
namespace {

class BackendPaged : public BackendTest {};

struct Heads {
  int q_heads;
  int kv_heads;
  int head_dim;
};

// GQA groups of 1 to 8, one and several kv heads, every head dim.
constexpr Heads kHeads[] = {{1, 1, 64}, {4, 1, 128}, {8, 2, 256}, {32, 8, 128}, {8, 8, 64}};

TEST_P(BackendPaged, MatchesTheReferenceOnRandomTablesWithSharing) {
  const std::vector<DType> kv_dtypes = on<std::vector<DType>>({DType::bf16, DType::f16, DType::f32}, {DType::bf16, DType::f16});
  const std::vector<PoolLayout> layouts = every_pool_layout();
  const int page_sizes[] = {1, 7, 16, 64};
  const DType out_dtypes[] = {DType::f32, DType::bf16, DType::f16};
  std::uint64_t seed = on<std::uint64_t>(100, 200);
  int run = 0;
  for (const int queries : {1, 2, 5}) {
    for (const Heads& heads : kHeads) {
      for (const bool causal : {true, false}) {
        harness::Random random(++seed);
        TableOptions options;
        options.page_size = page_sizes[run % 4];
        options.queries = queries;
        options.causal = causal;
        options.groups = static_cast<int>(random.integer(1, on(2, 3)));
        options.max_depth = static_cast<int>(random.integer(1, 3));
        // The GPU's shared pages are long enough to be split into items.
        options.max_shared_tokens = on(24, 250);
        options.max_own_tokens = on(12, 60);
        options.singles = static_cast<int>(random.integer(0, 2));
        options.shuffle_pages = run % 3 != 0;
        options.padding = run % 4 == 3 ? 2 : 0;
        const HostPageTable table = random_page_table(random, options);
        PagedCase c;
        c.q_heads = heads.q_heads;
        c.kv_heads = heads.kv_heads;
        c.head_dim = heads.head_dim;
        c.dtype = kv_dtypes[static_cast<std::size_t>(run) % kv_dtypes.size()];
        c.causal = causal;
        c.sm_scale = run % 5 == 4 ? 0.2f : 0.0f;
        c.layout = layouts[static_cast<std::size_t>(run) % layouts.size()];
        c.out_dtype = out_dtypes[run % 3];
        c.cpu_q_dtype = run % 2 == 0 ? DType::f32 : c.dtype;
        ++run;
        check_paged(backend(), table, c, random);
      }
    }
  }
}

// Every layout an engine may hand over, with pages shuffled and consecutive (consecutive pages of
// contiguous pools are read as one run).
TEST_P(BackendPaged, EveryPoolLayout) {
  std::uint64_t seed = on<std::uint64_t>(300, 400);
  for (const PoolLayout& layout : every_pool_layout()) {
    for (const bool shuffle_pages : {true, false}) {
      harness::Random random(++seed);
      TableOptions options;
      options.page_size = 16;
      options.queries = 2;
      options.max_shared_tokens = on(40, 300);
      options.shuffle_pages = shuffle_pages;
      const HostPageTable table = random_page_table(random, options);
      PagedCase c;
      c.q_heads = 4;
      c.kv_heads = 2;
      c.head_dim = 64;
      c.dtype = DType::bf16;
      c.layout = layout;
      check_paged(backend(), table, c, random);
    }
  }
}

// Every item on wide (wgmma) tiles, over every layout: 16 q heads per kv head and 5 query tokens
// give every row 80 query rows, pages of 8, 16 and 32 tokens, shuffled and consecutive. (Written for
// experiment 75, strided TMA boxes over NHD pages, which passed it and was dropped as no faster.)
TEST_P(BackendPaged, WideTilesOverEveryPoolLayout) {
  std::uint64_t seed = on<std::uint64_t>(500, 600);
  const std::vector<int> page_sizes = on<std::vector<int>>({16}, {8, 16, 32});
  for (const PoolLayout& layout : every_pool_layout()) {
    for (const int page_size : page_sizes) {
      for (const int head_dim : {64, 128}) {
        harness::Random random(++seed);
        TableOptions options;
        options.page_size = page_size;
        options.queries = 5;
        options.max_shared_tokens = on(40, 300);
        options.max_own_tokens = on(12, 60);
        options.shuffle_pages = page_size != 32;
        const HostPageTable table = random_page_table(random, options);
        PagedCase c;
        c.q_heads = 32;
        c.kv_heads = 2;
        c.head_dim = head_dim;
        c.dtype = head_dim == 64 ? DType::f16 : DType::bf16;
        c.layout = layout;
        check_paged(backend(), table, c, random);
      }
    }
  }
}

// Items of hundreds of pages of one and of three tokens, shuffled: a producer's run cursor crosses
// several windows of 32 run records inside one item, at odd positions of its stages (KERNEL_NOTES,
// experiments 77 and 78), on wide tiles (16 q heads per kv head, 5 query tokens) and on narrow ones
// (one q head per kv head, one query token).
TEST_P(BackendPaged, ItemsOfManyShortRunsCrossSeveralRecordWindows) {
  std::uint64_t seed = on<std::uint64_t>(700, 800);
  for (const int page_size : {1, 3}) {
    for (const int queries : {5, 1}) {
      SCOPED_TRACE(::testing::Message() << "page_size " << page_size << ", queries " << queries);
      harness::Random random(++seed);
      TableOptions options;
      options.page_size = page_size;
      options.queries = queries;
      options.groups = 1;
      options.max_shared_tokens = on(70, 400);
      options.max_own_tokens = on(40, 200);
      const HostPageTable table = random_page_table(random, options);
      PagedCase c;
      c.q_heads = queries == 5 ? 32 : 2;
      c.kv_heads = 2;
      c.head_dim = 128;
      check_paged(backend(), table, c, random);
    }
  }
}

TEST_P(BackendPaged, OddShapes) {
  harness::Random random(on(77, 78));
  for (const int head_dim : {64, 128, 256}) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << head_dim);
    PagedCase c;
    c.q_heads = 4;
    c.kv_heads = 2;
    c.head_dim = head_dim;
    for (const bool causal : {true, false}) {
      c.causal = causal;
      HostPageTable one_token(16, 1);
      one_token.add(std::vector<std::int32_t>{5}, 1);
      SCOPED_TRACE("one sequence of one token");
      check_paged(backend(), one_token, c, random);
    }
    {  // one page per sequence: the same page read whole, twice, and in part; pages of one token
      for (const int queries : {1, 2}) {
        c.causal = queries == 1;  // non-causal: one-token sequences may have two query tokens
        HostPageTable one_page(16, queries);
        for (const auto& [page, tokens] : std::vector<std::pair<std::int32_t, std::int32_t>>{{3, 16}, {3, 16}, {3, 5}, {0, 1}, {7, 9}, {1, 16}}) {
          one_page.add(std::vector<std::int32_t>{page}, tokens);
        }
        SCOPED_TRACE("one page per sequence");
        check_paged(backend(), one_page, c, random);
      }
      c.causal = true;
      HostPageTable single_tokens(1, 1);
      for (const std::vector<std::int32_t>& pages : std::vector<std::vector<std::int32_t>>{{4, 2, 9}, {4, 2}, {4}, {8}, {4, 2, 0}})
        single_tokens.add(pages, 1);
      SCOPED_TRACE("pages of one token");
      check_paged(backend(), single_tokens, c, random);
    }
    for (const int page_size : {7, 16}) {  // lengths on page boundaries and one token past them, after a shared page
      for (const int queries : {1, 2}) {
        HostPageTable table(page_size, queries);
        std::int32_t next_page = 1;  // page 0 is the shared first page
        for (const std::int64_t length : {page_size - 1, page_size, page_size + 1, 2 * page_size, 2 * page_size + 1, 3 * page_size + 1}) {
          std::vector<std::int32_t> pages{0};
          while (static_cast<std::int64_t>(pages.size()) * page_size < length) pages.push_back(next_page++);
          table.add(pages, static_cast<std::int32_t>(length - static_cast<std::int64_t>(pages.size() - 1) * page_size));
        }
        SCOPED_TRACE(::testing::Message() << "page boundaries, page_size " << page_size << " queries " << queries);
        check_paged(backend(), table, c, random);
      }
    }
    {  // causal with as many query tokens as the sequences hold, across a page boundary
      HostPageTable table(4, 5);
      table.add(std::vector<std::int32_t>{2, 0}, 1);
      table.add(std::vector<std::int32_t>{2, 1}, 1);
      table.add(std::vector<std::int32_t>{3, 4}, 4);
      SCOPED_TRACE("length == queries_per_seq");
      check_paged(backend(), table, c, random);
    }
  }
}

// An axis of one element takes any stride (it is never stepped along): one kv head whose axis has
// stride 0 or a negative one, as numpy gives an axis added with None, and pages of one token.
TEST_P(BackendPaged, AnAxisOfOneElementTakesAnyStride) {
  harness::Random random(on(81, 82));
  for (const int page_size : {1, 4}) {
    HostPageTable table(page_size, 2);
    table.add(std::vector<std::int32_t>{3, 1, 0}, 1);
    table.add(std::vector<std::int32_t>{3, 2}, page_size);
    const HostPool pool(random, table, 1, 64, DType::bf16, PoolLayout{});
    const PagedShape shape = paged_shape(table, 4, 1, 64, true);
    const std::vector<float> q = random_queries(random, table.tokens(), 4, 64, DType::bf16);
    PagedBackend attention(backend(), KvLayout::nhd);
    attention.plan(table.view(), shape);
    const PagedStep step(backend(), pool, q, table.tokens(), 4, 64);
    for (const std::int64_t stride : {std::int64_t{0}, std::int64_t{-64}}) {
      SCOPED_TRACE(::testing::Message() << "page_size " << page_size << " stride " << stride);
      PagedKv kv = step.kv();
      kv.head_stride = stride;
      if (page_size == 1) kv.token_stride = stride;
      expect_paged_match(backend(), table, pool, shape, q, step.run(attention, kv));
    }
  }
}

// A batch of no sequence: plan and run succeed with zero-row q and outputs.
TEST_P(BackendPaged, EmptyBatch) {
  harness::Random random(5);
  for (const bool list_queries : {false, true}) {
    HostPageTable table(16, 1);
    table.list_queries = list_queries;
    table.num_pages = 2;
    ASSERT_EQ(table.kv_indptr, std::vector<std::int32_t>{0});
    const HostPool pool(random, table, 2, 64, DType::bf16, PoolLayout{});
    PagedBackend attention(backend());
    attention.plan(table.view(), paged_shape(table, 4, 2, 64, true));
    const PagedStep step(backend(), pool, {}, 0, 4, 64);
    const Outputs got = step.run(attention);
    EXPECT_TRUE(got.out.empty());
    EXPECT_TRUE(got.lse.empty());
  }
}

// A sequence of no page (vLLM pads a CUDA graph's batch so for FlashInfer: kv_indptr repeats its
// last value, kv_last_page_len 1) reads nothing: its rows get the empty state, out 0 and lse −inf,
// beside rows of one state, of several, and with none but padding. The first table has as many
// states as rows (two rows of two states, two of none), which must not be taken for one state a row.
TEST_P(BackendPaged, SequencesOfNoPageGetTheEmptyState) {
  harness::Random random(on(41, 42));
  for (const int queries : {1, 2}) {
    for (const bool causal : {true, false}) {
      PagedCase c;
      c.q_heads = 4;
      c.kv_heads = 2;
      c.head_dim = 64;
      c.causal = causal;
      HostPageTable two_shared_two_padding(16, queries);
      two_shared_two_padding.add(std::vector<std::int32_t>{0, 1}, 5);
      two_shared_two_padding.add(std::vector<std::int32_t>{0, 2}, 7);
      two_shared_two_padding.add(std::vector<std::int32_t>{}, 1);
      two_shared_two_padding.add(std::vector<std::int32_t>{}, 1);
      HostPageTable between(16, queries);
      between.add(std::vector<std::int32_t>{}, 1);
      between.add(std::vector<std::int32_t>{3}, 4);
      between.add(std::vector<std::int32_t>{}, 1);
      between.add(std::vector<std::int32_t>{4, 5}, 16);
      HostPageTable only_padding(16, queries);
      for (int s = 0; s < 3; ++s) only_padding.add(std::vector<std::int32_t>{}, 1);
      only_padding.num_pages = 2;
      for (const HostPageTable* table : {&two_shared_two_padding, &between, &only_padding}) check_paged(backend(), *table, c, random);
    }
  }
}

// A scale of the caller's; without lse the same out, and lse untouched.
TEST_P(BackendPaged, ScaleAndNoLse) {
  harness::Random random(on(9, 10));
  TableOptions options;
  options.queries = 3;
  options.max_shared_tokens = on(30, 300);
  const HostPageTable table = random_page_table(random, options);
  SCOPED_TRACE(describe(table));
  const HostPool pool(random, table, 2, 128, DType::bf16, PoolLayout{});
  const PagedShape shape = paged_shape(table, 8, 2, 128, true, 0.37f);
  const std::vector<float> q = random_queries(random, table.tokens(), 8, 128, DType::bf16);
  PagedBackend attention(backend());
  attention.plan(table.view(), shape);
  const PagedStep step(backend(), pool, q, table.tokens(), 8, 128);
  const Outputs with_lse = step.run(attention);
  expect_paged_match(backend(), table, pool, shape, q, with_lse);
  const Outputs without = step.run(attention, DType::f32, /*with_lse=*/false);
  ASSERT_EQ(std::memcmp(with_lse.out.data(), without.out.data(), with_lse.out.size() * sizeof(float)), 0);
  for (const float lse : without.lse) ASSERT_TRUE(std::isnan(lse)) << "lse was written though none was passed";
}

// A random table planned and run once (4 q heads on 2 kv heads, d 64, bf16, causal): the plan
// that a refused or failed plan must leave in place, and its outputs.
struct PlannedStep {
  PlannedStep(Backend backend, harness::Random& random, const TableOptions& options)
      : table(random_page_table(random, options)),
        pool(random, table, 2, 64, DType::bf16, PoolLayout{}),
        shape(paged_shape(table, 4, 2, 64, true)),
        q(random_queries(random, table.tokens(), 4, 64, DType::bf16)),
        attention(backend),
        step(backend, pool, q, table.tokens(), 4, 64) {
    attention.plan(table.view(), shape);
    first = step.run(attention, DType::bf16);
  }
  HostPageTable table;
  HostPool pool;
  PagedShape shape;
  std::vector<float> q;
  PagedBackend attention;
  PagedStep step;
  Outputs first;
};

// A plan that is refused (the table's or the shape's checks) leaves the last plan in place: the
// next run gives the same bits as before.
TEST_P(BackendPaged, RefusedPlanKeepsThePreviousPlan) {
  harness::Random random(on(21, 22));
  TableOptions options;
  options.queries = 2;  // qo_indptr is passed
  options.singles = 2;  // sequences 0 .. 2 exist whatever the groups
  options.max_shared_tokens = on(30, 300);
  PlannedStep planned(backend(), random, options);
  const HostPageTable& table = planned.table;
  const PagedShape& shape = planned.shape;
  const Outputs& first = planned.first;
  SCOPED_TRACE(describe(table));
  ASSERT_GE(table.num_seqs(), 3);
  expect_paged_match(backend(), table, planned.pool, shape, planned.q, first, DType::bf16);

  const auto expect_refused = [&](const std::function<void(HostPageTable&, PagedShape&)>& change, const std::string& fragment) {
    SCOPED_TRACE(fragment);
    HostPageTable bad = table;
    PagedShape bad_shape = shape;
    change(bad, bad_shape);
    expect_error([&] { planned.attention.plan(bad.view(), bad_shape); }, ErrorCode::invalid_argument, fragment);
    expect_same_bits(first, planned.step.run(planned.attention, DType::bf16));
  };
  expect_refused([](HostPageTable& t, PagedShape&) { t.kv_last_page_len[1] = 0; }, "kv_last_page_len[1] is 0");
  expect_refused([](HostPageTable& t, PagedShape&) { t.kv_indptr[0] = 1; }, "kv_indptr[0] is 1");
  expect_refused([](HostPageTable& t, PagedShape&) { t.kv_indptr[2] = t.kv_indptr[1] - 1; }, "sequence 1 has -1 pages");
  expect_refused([](HostPageTable& t, PagedShape&) { t.kv_indices[0] = -1; }, "kv_indices[0] is -1");
  expect_refused([](HostPageTable& t, PagedShape&) { t.qo_indptr[2] += 1; }, "sequence 1 has 3 query tokens");
  expect_refused([](HostPageTable&, PagedShape& s) { s.head_dim = 96; }, "head_dim 96");
  // A refused table of another batch size: the outputs' shape is still the first plan's.
  expect_refused(
      [](HostPageTable& t, PagedShape&) {
        t.kv_indptr.pop_back();
        t.kv_last_page_len.pop_back();
        t.qo_indptr.pop_back();
        t.kv_last_page_len[0] = t.page_size + 1;
      },
      "kv_last_page_len[0] is 17");
}

// A plan that runs out of host memory while it finds the sharing (std::bad_alloc, past its checks)
// leaves the last plan in place too: the CPU backend, like the CUDA one, plans into a spare schedule
// and swaps it in (before, the half-made schedule ran: wrong outputs, or reads past row_limit).
// A death test's child with its address space capped; the CPU backend only (a child of a process
// with a CUDA context may not use it), and not under AddressSanitizer.
TEST_P(BackendPaged, APlanOutOfMemoryKeepsThePreviousPlan) {
  if (backend() != Backend::cpu || kAddressSanitizer) GTEST_SKIP() << "the CPU backend without AddressSanitizer";
  harness::Random random(23);
  TableOptions options;
  options.queries = 2;
  PlannedStep planned(backend(), random, options);
  HostPageTable large(16, 2);  // 2^22 sequences of a page each: the sharing's arrays need hundreds of MB
  const std::int32_t sequences = 1 << 22;
  large.kv_indptr.resize(static_cast<std::size_t>(sequences) + 1);
  std::iota(large.kv_indptr.begin(), large.kv_indptr.end(), 0);
  large.kv_indices.resize(static_cast<std::size_t>(sequences));
  std::iota(large.kv_indices.begin(), large.kv_indices.end(), 0);
  large.kv_last_page_len.assign(static_cast<std::size_t>(sequences), 16);
  large.qo_indptr.resize(static_cast<std::size_t>(sequences) + 1);
  for (std::size_t s = 0; s < large.qo_indptr.size(); ++s) large.qo_indptr[s] = static_cast<std::int32_t>(2 * s);
  EXPECT_EXIT(
      {
        int code = 2;  // the cap could not be set
        if (cap_address_space(std::size_t{64} << 20)) {
          code = 3;  // the large plan did not run out of memory
          try {
            planned.attention.plan(large.view(), planned.shape);
          } catch (const std::bad_alloc&) {
            const Outputs again = planned.step.run(planned.attention, DType::bf16);
            code = again.out_bits == planned.first.out_bits && again.out == planned.first.out && again.lse == planned.first.lse ? 0 : 1;
          }
        }
        std::_Exit(code);
      },
      ::testing::ExitedWithCode(0), "");
}

// One PagedAttention serves one call at a time: a plan() that overlaps a run() from another thread
// (Python releases the GIL for both) is refused, and every run gives the outputs
// of one whole plan, never a mixture of two (before the guard, most runs mixed them).
TEST_P(BackendPaged, APlanOverlappingARunIsRefused) {
  harness::Random random(on(31, 32));
  TableOptions options;
  options.singles = 2;
  options.max_shared_tokens = on(30, 300);
  PlannedStep planned(backend(), random, options);
  const HostPageTable& table = planned.table;
  const PagedShape& shape = planned.shape;
  PagedBackend& attention = planned.attention;
  const PagedStep& step = planned.step;
  const Outputs& of_table = planned.first;
  HostPageTable shorter = table;  // another plan of the same batch: sequence 0 one token shorter
  if (shorter.kv_last_page_len[0] > 1) {
    shorter.kv_last_page_len[0] -= 1;
  } else {
    shorter.kv_last_page_len[0] += 1;
  }
  attention.plan(shorter.view(), shape);
  const Outputs of_shorter = step.run(attention, DType::bf16);
  attention.plan(table.view(), shape);

  constexpr int kCalls = 200;
  std::vector<Outputs> runs;
  int refused = 0;
  const auto busy = [&](const Error& error) { return std::string(error.what()).find("another call") != std::string::npos; };
  std::thread runner([&] {
    for (int i = 0; i < kCalls; ++i) {
      try {
        runs.push_back(step.run(attention, DType::bf16));
      } catch (const Error& error) {
        EXPECT_TRUE(busy(error)) << error.what();
        ++refused;
      }
    }
  });
  for (int i = 0; i < kCalls; ++i) {
    try {
      attention.plan((i % 2 == 0 ? shorter : table).view(), shape);
    } catch (const Error& error) {
      EXPECT_TRUE(busy(error)) << error.what();
    }
  }
  runner.join();
  std::printf("[ note     ] %zu runs, %d refused\n", runs.size(), refused);
  for (const Outputs& run : runs) {
    const bool whole = run.out == of_table.out || run.out == of_shorter.out;
    EXPECT_TRUE(whole) << "a run mixed two plans";
    if (!whole) break;
  }
}

// Two PagedAttentions that plan the same table with the same shape report the same fingerprint (the
// ranks of a tensor-parallel engine, each with its head slice); another table gives another one,
// and a refused plan keeps the last plan's.
TEST_P(BackendPaged, PlanFingerprint) {
  harness::Random random(on(23, 24));
  TableOptions options;
  options.singles = 2;
  options.max_shared_tokens = on(30, 300);
  const HostPageTable table = random_page_table(random, options);
  SCOPED_TRACE(describe(table));
  const PagedShape shape = paged_shape(table, 4, 2, 64, false);
  PagedBackend rank0(backend());
  PagedBackend rank1(backend());
  expect_error([&] { (void)rank0.plan_fingerprint(); }, ErrorCode::invalid_argument, "no plan yet: call plan() first");
  rank0.plan(table.view(), shape);
  rank1.plan(table.view(), shape);
  EXPECT_EQ(rank0.plan_fingerprint(), rank1.plan_fingerprint());
  HostPageTable shorter = table;
  shorter.kv_last_page_len[0] = shorter.kv_last_page_len[0] == 1 ? 2 : 1;
  rank1.plan(shorter.view(), shape);
  EXPECT_NE(rank0.plan_fingerprint(), rank1.plan_fingerprint());
  const std::uint64_t before = rank1.plan_fingerprint();
  HostPageTable refused = shorter;
  refused.kv_indptr[0] = 1;
  expect_error([&] { rank1.plan(refused.view(), shape); }, ErrorCode::invalid_argument, "kv_indptr[0] is 1");
  EXPECT_EQ(rank1.plan_fingerprint(), before);
}

// ---- Errors: what both backends refuse, with a message that says what to fix ----------------

// A valid step that each case breaks in one place: 2 sequences with 2 query tokens each, causal,
// pages of 4 from a pool of 6 (NHD, one [pages, 2, ...] tensor), 2 kv heads, d 64, bf16, 4 q
// heads: sequence 0 reads pages [3, 1] (6 tokens), sequence 1 reads pages [3, 0, 5] (12 tokens).
class BackendPagedErrors : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    harness::Random random(on(31, 32));
    table.add(std::vector<std::int32_t>{3, 1}, 2);
    table.add(std::vector<std::int32_t>{3, 0, 5}, 4);
    pool = std::make_unique<HostPool>(random, table, 2, 64, DType::bf16, PoolLayout{});
    q = random_queries(random, 4, 4, 64, DType::bf16);
    step = std::make_unique<PagedStep>(backend(), *pool, q, 4, 4, 64);
    attention = std::make_unique<PagedBackend>(backend());
    attention->plan(table.view(), shape);
    if (backend() == Backend::cuda) device_outputs = std::make_unique<DeviceBuffer>(host_outputs.bytes());
  }

  // The backend's device, and the one whose tensors it refuses, by name as errors give them.
  std::string device_name() const { return std::string(to_string(device_of(backend()))); }
  Device refused_device() const { return on(Device::cuda, Device::cpu); }
  std::string refused_device_name() const { return std::string(to_string(refused_device())); }

  // Plans a copy of the table and the shape with `change` applied and expects invalid_argument.
  void expect_plan_invalid(const std::function<void(HostPageTable&, PagedShape&)>& change, const std::string& fragment) {
    HostPageTable bad = table;
    PagedShape bad_shape = shape;
    change(bad, bad_shape);
    SCOPED_TRACE(fragment);
    expect_error([&] { attention->plan(bad.view(), bad_shape); }, ErrorCode::invalid_argument, fragment);
  }
  // Runs the plan with `change` applied to the step's KV, q, out and lse, and expects invalid_argument.
  struct Call {
    PagedKv kv;
    ConstTensorView q;
    TensorView out;
    TensorView lse;
  };
  void expect_run_invalid(const std::function<void(Call&)>& change, const std::string& fragment) {
    Call call{step->kv(), step->q(), TensorView{outputs(), DType::f32, device_of(backend()), {4, 4, 64}},
              TensorView{static_cast<float*>(outputs()) + kOutFloats, DType::f32, device_of(backend()), {4, 4}}};
    change(call);
    SCOPED_TRACE(fragment);
    expect_error([&] { attention->run(call.kv, call.q, call.out, call.lse); }, ErrorCode::invalid_argument, fragment);
  }

  HostPageTable table{4, 2};
  PagedShape shape{4, 2, 64, 4, true, 0.0f};
  std::unique_ptr<HostPool> pool;
  std::vector<float> q;
  std::unique_ptr<PagedStep> step;
  std::unique_ptr<PagedBackend> attention;
  // out and lse in the backend's memory, large enough for every shape the cases give them (never
  // written: each case is refused before anything runs).
  // out's room (the largest out shape the cases pass), then lse's.
  static constexpr std::int64_t kOutFloats = 4 * 4 * 128;
  void* outputs() { return device_outputs ? device_outputs->data() : host_outputs.data(); }
  Blob host_outputs{DType::f32, kOutFloats + 4 * 8};
  std::unique_ptr<DeviceBuffer> device_outputs;
};

TEST_P(BackendPagedErrors, TheValidStepMatchesTheReference) { expect_paged_match(backend(), table, *pool, shape, q, step->run(*attention)); }

TEST_P(BackendPagedErrors, KvIndptr) {
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_indptr.clear(); }, "kv_indptr is empty");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_indptr[0] = 1; }, "kv_indptr[0] is 1; it must be 0");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_indptr = {0, 2, 0}; }, "sequence 1 has -2 pages (kv_indptr[s + 1] − kv_indptr[s]); kv_indptr must not decrease");
}

TEST_P(BackendPagedErrors, KvIndices) {
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_indices.pop_back(); }, "kv_indices has 4 entries but kv_indptr[batch] is 5");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_indices[3] = -1; }, "kv_indices[3] is -1; page ids are ≥ 0");
}

TEST_P(BackendPagedErrors, KvLastPageLen) {
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_last_page_len.pop_back(); },
                      "kv_last_page_len has 1 entries; expected one per sequence (2)");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_last_page_len.push_back(1); }, "kv_last_page_len has 3 entries");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_last_page_len[0] = 0; }, "kv_last_page_len[0] is 0; it must be 1..4 (page_size)");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.kv_last_page_len[1] = 5; }, "kv_last_page_len[1] is 5; it must be 1..4");
}

TEST_P(BackendPagedErrors, QoIndptr) {
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.qo_indptr.pop_back(); }, "qo_indptr has 2 entries; expected batch + 1 = 3");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.qo_indptr = {0, 2, 5}; }, "sequence 1 has 3 query tokens but sequence 0 has 2");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.qo_indptr = {1, 3, 5}; }, "qo_indptr[0] is 1; it must be 0");
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.qo_indptr = {0, 0, 0}; }, "sequence 0 has 0 query tokens");
}

// With causal a sequence's last query tokens are its last tokens: it needs as many; without, any length will do.
TEST_P(BackendPagedErrors, CausalNeedsAsManyTokensAsQueryTokens) {
  expect_plan_invalid([](HostPageTable& t, PagedShape&) { t.qo_indptr = {0, 7, 14}; }, "sequence 0 holds 6 tokens but has 7 query tokens");
  HostPageTable seven_queries = table;
  seven_queries.qo_indptr = {0, 7, 14};
  PagedShape not_causal = shape;
  not_causal.causal = false;
  EXPECT_NO_THROW(attention->plan(seven_queries.view(), not_causal));
}

TEST_P(BackendPagedErrors, Shape) {
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.head_dim = 96; }, "head_dim 96 is not 64, 128 or 256");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.num_qo_heads = 6, s.num_kv_heads = 4; },
                      "num_qo_heads (6) must be a multiple of num_kv_heads (4)");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.num_qo_heads = 0; }, "num_qo_heads (0) must be a multiple");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.num_kv_heads = 0; }, "num_kv_heads must be at least 1, got 0");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.page_size = 0; }, "page_size must be at least 1, got 0");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.sm_scale = std::numeric_limits<float>::quiet_NaN(); }, "sm_scale must be finite");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.sm_scale = std::numeric_limits<float>::infinity(); }, "sm_scale must be finite");
  expect_plan_invalid([](HostPageTable&, PagedShape& s) { s.sm_scale = -3e38f; }, "sm_scale must be finite and at most");
}

TEST_P(BackendPagedErrors, RunBeforePlan) {
  PagedBackend unplanned(backend());
  expect_error(
      [&] {
        unplanned.run(step->kv(), step->q(), TensorView{outputs(), DType::f32, device_of(backend()), {4, 4, 64}});
      },
      ErrorCode::invalid_argument, "no plan yet: call plan() first");
}

TEST_P(BackendPagedErrors, KvCache) {
  expect_run_invalid([](Call& c) { c.kv.num_pages = 5; }, "the page table reads page 5 but kv_cache holds 5 pages");
  expect_run_invalid([](Call& c) { c.kv.num_kv_heads = 1; },
                     "kv_cache has pages of 4 tokens, 1 kv heads and head_dim 64; the plan was made for 4, 2 and 64");
  expect_run_invalid([](Call& c) { c.kv.page_size = 8; }, "kv_cache has pages of 8 tokens");
  expect_run_invalid([](Call& c) { c.kv.head_dim = 128; }, "and head_dim 128; the plan was made for");
  expect_run_invalid([&](Call& c) { c.kv.device = refused_device(); },
                     "kv_cache is in " + refused_device_name() + " memory; this backend needs it in " + device_name() + " memory");
  expect_run_invalid([](Call& c) { c.kv.k = nullptr; }, "kv_cache has no data");
  expect_run_invalid([](Call& c) { c.kv.v = nullptr; }, "kv_cache has no data");
  expect_run_invalid([](Call& c) { c.kv.dtype = static_cast<DType>(9); }, "kv_cache's dtype must be f32, f16 or bf16, got the value 9");
  expect_run_invalid([](Call& c) { c.kv.token_stride = 0; }, "kv_cache's strides (page 1024, token 0, head 64 elements) must be positive along every axis");
  expect_run_invalid([](Call& c) { c.kv.head_stride = -64; }, "must be positive");
  expect_run_invalid([](Call& c) { c.kv.page_stride = 0; }, "kv_cache's strides (page 0, token 128, head 64 elements) must be positive along every axis");
  // Offsets past 64 bits would wrap to memory the pool does not hold.
  expect_run_invalid([](Call& c) { c.kv.page_stride = std::int64_t{1} << 61; }, "reach past any memory; pass the pool's own strides");
}

TEST_P(BackendPagedErrors, QOutAndLse) {
  expect_run_invalid([&](Call& c) { c.q.shape = {3, 4, 64}; }, "q has shape [3, 4, 64]; expected [4, 4, 64]");
  expect_run_invalid([&](Call& c) { c.q.shape = {4, 8, 64}; }, "q has shape [4, 8, 64]; expected [4, 4, 64]");
  expect_run_invalid([&](Call& c) { c.q.device = refused_device(); }, "q is in " + refused_device_name() + " memory");
  if (backend() == Backend::cuda) {  // the CPU reads q in any dtype
    expect_run_invalid([&](Call& c) { c.q.dtype = DType::f16; }, "q has dtype f16; expected bf16");
  }
  expect_run_invalid([&](Call& c) { c.out.shape = {4, 4, 128}; }, "out has shape [4, 4, 128]; expected [4, 4, 64]");
  expect_run_invalid([&](Call& c) { c.out.shape = {2, 4, 64}; }, "out has shape [2, 4, 64]");
  expect_run_invalid([&](Call& c) { c.out.device = refused_device(); }, "out is in " + refused_device_name() + " memory");
  expect_run_invalid([&](Call& c) { c.lse.shape = {4, 2}; }, "lse has shape [4, 2]; expected [4, 4]");
  expect_run_invalid([&](Call& c) { c.lse.dtype = DType::bf16; }, "lse has dtype bf16; expected f32");
  // A row's out and lse are written together: lse inside out would overwrite it.
  expect_run_invalid([&](Call& c) { c.lse.data = static_cast<float*>(c.out.data) + 16; }, "lse overlaps out; pass an lse that is memory of its own");
}

CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(BackendPaged);
CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(BackendPagedErrors);

}  // namespace
}  // namespace chunktree::testing
