// The paged front end's schedule (src/schedule/paged.hpp): the sharing work::PagedSchedule finds in
// an engine's page table (sequences whose page lists begin with the same pages, wherever they sit
// in the batch), and the work it makes over pools of given strides: run offsets, runs merged only
// where consecutive pages lie next to each other in memory, and merge lists that cover each
// sequence's tokens exactly once.
#include "schedule/paged.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/expect_error.hpp"
#include "support/paged.hpp"

namespace chunktree {
namespace {

using testing::HostPageTable;

constexpr int kPage = 4;

work::PagedSchedule schedule_of(const HostPageTable& table, bool causal = true) {
  work::PagedSchedule schedule;
  schedule.assign(table.view(), PagedShape{4, 2, 64, table.page_size, causal, 0.0f}, "test");
  return schedule;
}

// Spans as (rows, tokens) pairs, sorted, for comparison regardless of order.
std::vector<std::pair<std::int64_t, std::int64_t>> sorted_spans(const work::PagedSchedule& schedule) {
  std::vector<SpanSize> sizes;
  schedule.spans(sizes);
  std::vector<std::pair<std::int64_t, std::int64_t>> spans;
  for (const SpanSize& span : sizes) spans.emplace_back(span.rows, span.tokens);
  std::sort(spans.begin(), spans.end());
  return spans;
}

std::vector<std::int32_t> concat(std::vector<std::int32_t> a, const std::vector<std::int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The work's invariants, and that every row's merge list reads its sequence's tokens 0 .. length − 1
// once each, every run's offsets where those tokens lie in pools of `strides`.
void expect_work_covers_every_sequence(const HostPageTable& table, const work::Work& w, const work::PageStrides& strides, std::size_t bytes,
                                       std::int64_t max_item_tokens) {
  ASSERT_EQ(static_cast<std::int64_t>(w.num_rows()), table.num_seqs());
  std::vector<bool> seen_batch(static_cast<std::size_t>(table.num_seqs()), false);
  for (const std::uint32_t s : w.row_to_batch) {
    ASSERT_FALSE(seen_batch[s]) << "row_to_batch is not a permutation";
    seen_batch[s] = true;
  }
  std::vector<std::size_t> item_of_state(w.num_states);
  std::uint32_t next_state = 0;
  for (std::size_t i = 0; i < w.items.size(); ++i) {
    const work::Item& item = w.items[i];
    ASSERT_EQ(item.state_begin, next_state);
    ASSERT_LT(item.row_begin, item.row_end);
    ASSERT_LT(item.run_begin, item.run_end);
    if (max_item_tokens > 0) ASSERT_LE(item.tokens, max_item_tokens);
    ASSERT_LE(item.tokens, kMaxItemTokens);
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) item_of_state[item.state_begin + (r - item.row_begin)] = i;
    next_state += item.row_end - item.row_begin;
    std::int64_t tokens = 0;
    for (std::uint32_t run = item.run_begin; run < item.run_end; ++run) {
      ASSERT_EQ(w.runs[run].k_offset, w.runs[run].v_offset);
      ASSERT_EQ(w.runs[run].token_stride, strides.token);
      ASSERT_EQ(w.runs[run].head_stride, strides.head);
      if (run > item.run_begin)
        ASSERT_EQ(w.runs[run].position, w.runs[run - 1].position + w.runs[run - 1].tokens) << "runs of an item are consecutive";
      tokens += w.runs[run].tokens;
    }
    ASSERT_EQ(tokens, item.tokens);
  }
  ASSERT_EQ(next_state, w.num_states);
  ASSERT_EQ(w.merge_begin.size(), static_cast<std::size_t>(w.num_rows()) + 1);
  for (std::uint32_t r = 0; r < w.num_rows(); ++r) {
    const std::uint32_t s = w.row_to_batch[r];
    SCOPED_TRACE(::testing::Message() << "row " << r << " (sequence " << s << ")");
    const std::int64_t length = table.length(s);
    ASSERT_EQ(w.row_limit[r], length - table.queries);  // causal: query token i sees positions ≤ length − queries + i
    std::vector<int> reads(static_cast<std::size_t>(length), 0);
    std::int64_t listed_tokens = 0;
    for (std::uint32_t m = w.merge_begin[r]; m < w.merge_begin[r + 1]; ++m) {
      const work::Item& item = w.items[item_of_state[w.merge_states[m]]];
      ASSERT_TRUE(r >= item.row_begin && r < item.row_end) << "a merge list names an item of other rows";
      listed_tokens += item.tokens;
      for (std::uint32_t run = item.run_begin; run < item.run_end; ++run) {
        const work::KvRun& kv = w.runs[run];
        for (std::int64_t j = 0; j < kv.tokens; ++j) {
          const std::int64_t position = kv.position + j;
          ASSERT_LT(position, length);
          ++reads[static_cast<std::size_t>(position)];
          const std::int64_t page = table.pages(s)[static_cast<std::size_t>(position / table.page_size)];
          const auto expected =
              static_cast<std::uint64_t>((page * strides.page + position % table.page_size * strides.token) * static_cast<std::int64_t>(bytes));
          ASSERT_EQ(kv.k_offset + static_cast<std::uint64_t>(j * strides.token * static_cast<std::int64_t>(bytes)), expected)
              << "position " << position;
        }
      }
    }
    ASSERT_EQ(listed_tokens, length);
    for (std::int64_t p = 0; p < length; ++p) ASSERT_EQ(reads[static_cast<std::size_t>(p)], 1) << "position " << p;
  }
}

// 2 groups of 3 sequences, interleaved in the batch (g0 g1 g0 g1 g0 g1), each group on 4 pages of
// its own, then 2 private pages per sequence: each group is one span of 3 rows and 4 pages, each
// sequence's rest a span of its own, and a group's rows are contiguous.
TEST(PagedSchedule, FindsGroupsInterleavedInTheBatch) {
  HostPageTable table(kPage, 1);
  const std::vector<std::int32_t> group_pages[] = {{20, 7, 13, 2}, {5, 31, 8, 17}};
  std::int32_t next_private = 40;
  for (int s = 0; s < 6; ++s) {
    table.add(concat(group_pages[s % 2], {next_private, next_private + 3}), 3);
    next_private += 6;
  }
  const work::PagedSchedule schedule = schedule_of(table);
  EXPECT_EQ(schedule.num_seqs(), 6);
  EXPECT_EQ(schedule.max_page(), next_private - 6 + 3);
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(sorted_spans(schedule),
            Spans({{1, kPage + 3}, {1, kPage + 3}, {1, kPage + 3}, {1, kPage + 3}, {1, kPage + 3}, {1, kPage + 3}, {3, 4 * kPage}, {3, 4 * kPage}}));
  work::Work w;
  schedule.to_work(work::PageStrides{2 * kPage * 128, 128, 64}, 2, 0, w);
  for (const work::Item& item : w.items) {
    if (item.row_end - item.row_begin != 3) continue;
    for (std::uint32_t r = item.row_begin + 1; r < item.row_end; ++r) EXPECT_EQ(w.row_to_batch[r] % 2, w.row_to_batch[item.row_begin] % 2);
  }
  expect_work_covers_every_sequence(table, w, work::PageStrides{2 * kPage * 128, 128, 64}, 2, 0);
}

// Sequences with the same pages and the same last page are one span of all their rows.
TEST(PagedSchedule, IdenticalSequencesAreOneSpan) {
  HostPageTable table(kPage, 2);
  for (int s = 0; s < 5; ++s) table.add(std::vector<std::int32_t>{9, 4, 6}, 3);
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(sorted_spans(schedule_of(table)), Spans({{5, 2 * kPage + 3}}));
}

// All six share 2 pages; two subgroups of three share 3 more each; then 1 private page each.
TEST(PagedSchedule, NestedSharing) {
  HostPageTable table(kPage, 1);
  const std::vector<std::int32_t> all{11, 3};
  const std::vector<std::int32_t> sub[] = {{7, 0, 14}, {1, 12, 5}};
  const int subgroup_of[] = {0, 0, 1, 1, 0, 1};  // the subgroups interleaved in the batch too
  for (int s = 0; s < 6; ++s) table.add(concat(concat(all, sub[subgroup_of[s]]), {20 + s}), 2);
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(sorted_spans(schedule_of(table)),
            Spans({{1, 2}, {1, 2}, {1, 2}, {1, 2}, {1, 2}, {1, 2}, {3, 3 * kPage}, {3, 3 * kPage}, {6, 2 * kPage}}));
}

// A page is shared only by sequences that hold the same tokens of it: a sequence that reads part of
// a page the others read whole parts from them there, and one whose pages are a strict prefix of
// another's shares all of them.
TEST(PagedSchedule, StrictPrefixesAndPartlyReadPages) {
  HostPageTable table(kPage, 1);
  table.add(std::vector<std::int32_t>{8, 2, 5}, 1);   // B: pages a b c
  table.add(std::vector<std::int32_t>{8, 2}, kPage);  // A: a strict prefix of B, its last page full
  table.add(std::vector<std::int32_t>{8, 2}, 3);      // C: page b read in part
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(sorted_spans(schedule_of(table)), Spans({{1, 1}, {1, 3}, {2, kPage}, {3, kPage}}));
  work::Work w;
  schedule_of(table).to_work(work::PageStrides{kPage * 64, 64, 64}, 2, 0, w);
  expect_work_covers_every_sequence(table, w, work::PageStrides{kPage * 64, 64, 64}, 2, 0);
}

// The same pages at other positions, or a page shared further on after different first pages, is
// no sharing: only common first pages are.
TEST(PagedSchedule, OnlyCommonFirstPagesAreShared) {
  HostPageTable table(kPage, 1);
  table.add(std::vector<std::int32_t>{1, 2}, kPage);
  table.add(std::vector<std::int32_t>{2, 1}, kPage);
  table.add(std::vector<std::int32_t>{3, 2}, kPage);
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(sorted_spans(schedule_of(table)), Spans({{1, 2 * kPage}, {1, 2 * kPage}, {1, 2 * kPage}}));
}

TEST(PagedSchedule, RowLimitsAndQueries) {
  HostPageTable table(kPage, 3);
  table.add(std::vector<std::int32_t>{0, 1}, 2);  // 6 tokens
  table.add(std::vector<std::int32_t>{2}, 3);     // 3 tokens
  for (const bool causal : {true, false}) {
    const work::PagedSchedule schedule = schedule_of(table, causal);
    EXPECT_EQ(schedule.queries_per_seq(), 3);
    work::Work w;
    schedule.to_work(work::PageStrides{kPage * 64, 64, 64}, 2, 0, w);
    EXPECT_EQ(w.queries_per_seq, 3);
    for (std::uint32_t r = 0; r < w.num_rows(); ++r) {
      const std::int64_t length = table.length(w.row_to_batch[r]);
      // Causal: query token i sees positions ≤ limit + i, its own last; otherwise all of them.
      EXPECT_EQ(w.row_limit[r], causal ? length - 3 : length - 1) << "row " << r;
    }
    for (const work::Item& item : w.items) EXPECT_EQ(item.causal, causal ? 1u : 0u);
  }
}

// Offsets are (page · page_stride + slot · token_stride) · bytes; consecutive pages become one run
// only where the next page starts where the last one's tokens end in memory (contiguous pools of
// NHD, or of HND with one kv head), never across pools interleaved with V or padded.
TEST(PagedSchedule, RunOffsetsAndMergesOfConsecutivePages) {
  HostPageTable table(kPage, 1);
  table.add(std::vector<std::int32_t>{3, 4, 5, 9}, 2);  // 3, 4, 5 consecutive; 9 not
  table.add(std::vector<std::int32_t>{3, 4, 5, 10}, 1);
  struct Case {
    const char* what;
    int kv_heads;
    KvLayout layout;
    bool separate;
    std::int64_t padding;
    std::size_t shared_runs;  // runs of the shared span (pages 3, 4, 5)
  };
  const Case cases[] = {{"NHD separate pools", 2, KvLayout::nhd, true, 0, 1},
                        {"NHD [pages, 2, ...]", 2, KvLayout::nhd, false, 0, 3},
                        {"NHD padded", 2, KvLayout::nhd, true, 8, 3},
                        {"HND separate pools, 1 kv head", 1, KvLayout::hnd, true, 0, 1},
                        {"HND separate pools, 2 kv heads", 2, KvLayout::hnd, true, 0, 3}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    work::PagedSchedule schedule;
    schedule.assign(table.view(), PagedShape{c.kv_heads, c.kv_heads, 64, kPage, true, 0.0f}, "test");
    const std::int64_t page = static_cast<std::int64_t>(kPage) * c.kv_heads * 64 + c.padding;
    const work::PageStrides strides{c.separate ? page : 2 * page, c.layout == KvLayout::nhd ? c.kv_heads * 64 : 64,
                                    c.layout == KvLayout::nhd ? 64 : kPage * 64};
    if (!c.separate && c.padding == 0) ASSERT_EQ(strides, work::interleaved_strides(c.layout, schedule.shape()));
    for (const std::size_t bytes : {std::size_t{2}, std::size_t{4}}) {
      work::Work w;
      schedule.to_work(strides, bytes, 0, w);
      ASSERT_EQ(w.items.size(), 3u);  // the shared pages, then each sequence's last page
      const work::Item& shared = w.items[0];
      ASSERT_EQ(shared.row_end - shared.row_begin, 2u);
      EXPECT_EQ(shared.run_end - shared.run_begin, c.shared_runs);
      EXPECT_EQ(w.runs[shared.run_begin].k_offset, static_cast<std::uint64_t>(3 * strides.page) * bytes);
      EXPECT_EQ(w.runs[shared.run_begin].tokens, c.shared_runs == 1 ? 3 * kPage : kPage);
      expect_work_covers_every_sequence(table, w, strides, bytes, 0);
      // Items cut inside pages: runs start mid-page, at slot · token_stride.
      schedule.to_work(strides, bytes, 3, w);
      EXPECT_EQ(w.runs[w.items[1].run_begin].k_offset, static_cast<std::uint64_t>(3 * strides.page + 3 * strides.token) * bytes);
      expect_work_covers_every_sequence(table, w, strides, bytes, 3);
    }
  }
}

// A span longer than kMaxItemTokens becomes several items whatever the split asks; the cost
// model's input (spans) still sees it whole.
TEST(PagedSchedule, NoItemHoldsMoreThanTheCap) {
  constexpr int kBigPage = 256;
  const auto shared_pages = static_cast<std::int32_t>(kMaxItemTokens / kBigPage + 1);
  std::vector<std::int32_t> pages(static_cast<std::size_t>(shared_pages));
  for (std::int32_t p = 0; p < shared_pages; ++p) pages[static_cast<std::size_t>(p)] = p;
  HostPageTable table(kBigPage, 1);
  table.add(concat(pages, {shared_pages}), 3);
  table.add(concat(pages, {shared_pages + 1}), 5);
  work::PagedSchedule schedule;
  schedule.assign(table.view(), PagedShape{1, 1, 64, kBigPage, true, 0.0f}, "test");
  EXPECT_EQ(sorted_spans(schedule), (std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 3}, {1, 5}, {2, kMaxItemTokens + kBigPage}}));
  const work::PageStrides strides{kBigPage * 64, 64, kBigPage * 64};
  for (const std::int64_t asked : {std::int64_t{0}, 2 * kMaxItemTokens}) {
    SCOPED_TRACE(::testing::Message() << "items of " << asked);
    work::Work w;
    schedule.to_work(strides, 2, asked, w);
    ASSERT_EQ(w.items.size(), 4u);  // the shared pages as kMaxItemTokens and then one page; each last page
    EXPECT_EQ(w.items[0].tokens, kMaxItemTokens);
    EXPECT_EQ(w.items[1].tokens, kBigPage);
    expect_work_covers_every_sequence(table, w, strides, 2, 0);
  }
}

// Random tables with nested sharing, every layout's strides and several item sizes: every row's
// merge list reads its sequence's tokens exactly once, where they lie.
TEST(PagedSchedule, MergeListsCoverEverySequenceOnceOnRandomTables) {
  std::uint64_t seed = 500;
  for (const int page_size : {1, 7, 16}) {
    for (const int queries : {1, 3}) {
      harness::Random random(++seed);
      testing::TableOptions options;
      options.page_size = page_size;
      options.queries = queries;
      options.groups = 3;
      options.shuffle_pages = queries == 1;
      const HostPageTable table = random_page_table(random, options);
      SCOPED_TRACE(testing::describe(table));
      const work::PagedSchedule schedule = schedule_of(table);
      EXPECT_EQ(schedule.num_seqs(), table.num_seqs());
      std::int64_t spanned = 0;  // every token of every sequence is in one span
      std::vector<SpanSize> spans;
      schedule.spans(spans);
      for (const SpanSize& span : spans) spanned += span.rows * span.tokens;
      std::int64_t tokens = 0;
      for (std::int64_t s = 0; s < table.num_seqs(); ++s) tokens += table.length(s);
      EXPECT_EQ(spanned, tokens);
      for (const testing::PoolLayout& layout : testing::every_pool_layout()) {
        const testing::HostPool pool(random, std::vector<std::int32_t>(1, 0), page_size, 2, 64, DType::f32, layout);  // its strides only
        const PagedKv kv = pool.view();
        const work::PageStrides strides{kv.page_stride, kv.token_stride, kv.head_stride};
        for (const std::int64_t max_item_tokens : {std::int64_t{0}, std::int64_t{5}, std::int64_t{64}}) {
          SCOPED_TRACE(::testing::Message() << testing::describe(layout) << ", items of " << max_item_tokens);
          work::Work w;
          schedule.to_work(strides, 2, max_item_tokens, w);
          expect_work_covers_every_sequence(table, w, strides, 2, max_item_tokens);
        }
      }
    }
  }
}

// A schedule planned again keeps nothing of its last plan but memory: the same as a fresh one; a
// refused table leaves the last plan as it was.
TEST(PagedSchedule, PlannedAgainItIsAFreshPlanAndARefusedTableChangesNothing) {
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  HostPageTable first(kPage, 1);
  for (int s = 0; s < 6; ++s) first.add(std::vector<std::int32_t>{90, 91, 92 + s}, 2);
  HostPageTable second(kPage, 1);
  for (int s = 0; s < 3; ++s) second.add(std::vector<std::int32_t>{4, 5 + s}, kPage);
  const PagedShape shape{4, 2, 64, kPage, true, 0.0f};
  work::PagedSchedule schedule;
  schedule.assign(first.view(), shape, "test");
  schedule.assign(second.view(), shape, "test");
  const work::PagedSchedule fresh = schedule_of(second);
  EXPECT_EQ(sorted_spans(schedule), sorted_spans(fresh));
  EXPECT_EQ(schedule.max_page(), 7);
  EXPECT_EQ(schedule.num_seqs(), 3);
  HostPageTable refused(kPage, 1);
  refused.add(std::vector<std::int32_t>{1}, 0);
  testing::expect_error([&] { schedule.assign(refused.view(), shape, "test"); }, ErrorCode::invalid_argument, "kv_last_page_len[0] is 0");
  EXPECT_EQ(sorted_spans(schedule), Spans({{1, kPage}, {1, kPage}, {1, kPage}, {3, kPage}}));
  EXPECT_EQ(schedule.max_page(), 7);
}

// The fingerprint is the plan: the same table and shape give the same digest whatever was planned
// before (what the ranks of a tensor-parallel engine compare), and each thing the kernels would run
// differently changes it; a refused table leaves it as it was.
TEST(PagedSchedule, FingerprintIsThePlan) {
  HostPageTable table(kPage, 1);
  for (int s = 0; s < 4; ++s) table.add(std::vector<std::int32_t>{7, 3, 10 + s}, 2);
  const PagedShape shape{4, 2, 64, kPage, true, 0.0f};
  work::PagedSchedule schedule;
  schedule.assign(table.view(), shape, "test");
  const std::uint64_t digest = schedule.fingerprint(256);
  HostPageTable other(kPage, 1);
  other.add(std::vector<std::int32_t>{1, 2}, 1);
  work::PagedSchedule reused;
  reused.assign(other.view(), shape, "test");
  reused.assign(table.view(), shape, "test");
  EXPECT_EQ(reused.fingerprint(256), digest);

  const auto digest_of = [&](const HostPageTable& t, const PagedShape& s, std::int64_t split) {
    work::PagedSchedule fresh;
    fresh.assign(t.view(), s, "test");
    return fresh.fingerprint(split);
  };
  HostPageTable longer = table;
  longer.kv_last_page_len[3] = 3;
  HostPageTable other_page = table;
  other_page.kv_indices[1] = 4;
  HostPageTable reordered(kPage, 1);
  for (const int s : {1, 0, 2, 3}) reordered.add(std::vector<std::int32_t>{7, 3, 10 + s}, 2);
  PagedShape fewer_heads = shape;
  fewer_heads.num_qo_heads = 2;
  fewer_heads.num_kv_heads = 1;
  PagedShape not_causal = shape;
  not_causal.causal = false;
  for (const std::uint64_t changed : {digest_of(longer, shape, 256), digest_of(other_page, shape, 256), digest_of(reordered, shape, 256),
                                      digest_of(table, fewer_heads, 256), digest_of(table, not_causal, 256), digest_of(table, shape, 128)}) {
    EXPECT_NE(changed, digest);
  }
  EXPECT_EQ(digest_of(table, shape, 0), digest_of(table, shape, 2 * kMaxItemTokens));  // both cut at the cap: one plan

  HostPageTable refused = table;
  refused.kv_indices[0] = -2;
  testing::expect_error([&] { schedule.assign(refused.view(), shape, "test"); }, ErrorCode::invalid_argument, "kv_indices[0] is -2");
  EXPECT_EQ(schedule.fingerprint(256), digest);
}

// State indices are 32-bit: work of more states (2^20 sequences on one 2^16-token page, cut into
// items of 16 tokens: 2^32) is refused, never wrapped around (it wrote past the merge lists).
TEST(PagedSchedule, WorkOfMoreThan32BitStatesIsRefused) {
  constexpr int kLargePage = 1 << 16;
  HostPageTable table(kLargePage, 1);
  const std::vector<std::int32_t> page{0};
  for (int s = 0; s < (1 << 20); ++s) table.add(page, kLargePage);
  work::PagedSchedule schedule;
  schedule.assign(table.view(), PagedShape{1, 1, 64, kLargePage, false, 0.0f}, "test");
  work::Work w;
  testing::expect_error([&] { schedule.to_work(work::PageStrides{kLargePage * 64, 64, 64}, 2, 16, w); }, ErrorCode::invalid_argument,
                        "paged: the plan needs more than 2^32 − 1 partial states");
}

// Errors name their caller (the backend) before what to fix.
TEST(PagedSchedule, ErrorsNameTheCaller) {
  HostPageTable table(kPage, 1);
  table.add(std::vector<std::int32_t>{0}, 0);
  testing::expect_error(
      [&] {
        work::PagedSchedule().assign(table.view(), PagedShape{4, 2, 64, kPage, true, 0.0f}, "cuda backend");
      },
      ErrorCode::invalid_argument, "cuda backend: kv_last_page_len[0] is 0");
}

}  // namespace
}  // namespace chunktree
