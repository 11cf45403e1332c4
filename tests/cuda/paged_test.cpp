// Paged attention where only the CUDA backend has something to show (label gpu; skipped where no
// Hopper GPU is visible): run() captured in a CUDA graph replays every later plan, runs over pools
// of other strides than the plan assumed (loaded again eagerly, refused under capture), heads and
// head dims that change between plans, a long prefix shared by many sequences, and what only the
// GPU checks. The cases both backends pass are in tests/backends/paged_test.cpp.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "support/device_buffer.hpp"
#include "support/expect_error.hpp"
#include "support/paged.hpp"

namespace chunktree::testing {
namespace {

#define REQUIRE_HOPPER() \
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible"

constexpr Backend kCuda = Backend::cuda;

// out (f32) and lse of a fixed number of query tokens in device memory, as a graph captures them.
class GraphOutputs {
 public:
  GraphOutputs(std::int64_t tokens, int q_heads, int head_dim)
      : tokens_(tokens),
        q_heads_(q_heads),
        head_dim_(head_dim),
        out_(static_cast<std::size_t>(tokens * q_heads * head_dim) * 4),
        lse_(static_cast<std::size_t>(tokens * q_heads) * 4) {}
  TensorView out() const { return TensorView{out_.data(), DType::f32, Device::cuda, {tokens_, q_heads_, head_dim_}}; }
  TensorView lse() const { return TensorView{lse_.data(), DType::f32, Device::cuda, {tokens_, q_heads_}}; }
  void poison(cudaStream_t stream) const {
    EXPECT_EQ(cudaMemsetAsync(out_.data(), 0xff, out_.bytes(), stream), cudaSuccess);
    EXPECT_EQ(cudaMemsetAsync(lse_.data(), 0xff, lse_.bytes(), stream), cudaSuccess);
  }
  // What the stream's work wrote.
  Outputs read(cudaStream_t stream) const {
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const std::vector<std::uint8_t> out = out_.download<std::uint8_t>();
    return outputs_of(out.data(), DType::f32, tokens_ * q_heads_ * head_dim_, lse_.download<float>());
  }

 private:
  std::int64_t tokens_;
  int q_heads_;
  int head_dim_;
  DeviceBuffer out_;
  DeviceBuffer lse_;
};

// A stream of the test's own (non-blocking: it does not wait for the default stream).
class Stream {
 public:
  Stream() { EXPECT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  operator cudaStream_t() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// `run` captured on `stream` into a graph (the capture ended also when `run` throws).
cudaGraph_t capture(cudaStream_t stream, const std::function<void()>& run) {
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  try {
    run();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();  // an invalidated capture's error must not surface in later calls
    throw;
  }
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  return graph;
}

// Replays a captured graph into poisoned outputs and reads them.
class Replay {
 public:
  explicit Replay(cudaGraph_t graph) : graph_(graph) { EXPECT_EQ(cudaGraphInstantiate(&exec_, graph_, 0), cudaSuccess); }
  ~Replay() {
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;
  Outputs operator()(const GraphOutputs& outputs, cudaStream_t stream) const {
    outputs.poison(stream);
    EXPECT_EQ(cudaGraphLaunch(exec_, stream), cudaSuccess);
    return outputs.read(stream);
  }

 private:
  cudaGraph_t graph_;
  cudaGraphExec_t exec_ = nullptr;
};

// Page ids in random order from a pool, as an engine's allocator hands them out.
class PageAllocator {
 public:
  PageAllocator(harness::Random& random, std::int32_t size) : ids_(static_cast<std::size_t>(size)) {
    std::iota(ids_.begin(), ids_.end(), 0);
    shuffle_in_place(random, ids_);
  }
  std::vector<std::int32_t> take(std::int64_t count) {
    std::vector<std::int32_t> pages(ids_.begin() + next_, ids_.begin() + next_ + count);
    next_ += count;
    return pages;
  }

 private:
  std::vector<std::int32_t> ids_;
  std::int64_t next_ = 0;
};

// A sequence of `prefix` then 1 .. max_own_pages pages of its own, the last partly filled.
void add_with_own_pages(harness::Random& random, HostPageTable& table, PageAllocator& allocator, std::vector<std::int32_t> prefix,
                        int max_own_pages) {
  const std::vector<std::int32_t> own = allocator.take(random.integer(1, max_own_pages));
  prefix.insert(prefix.end(), own.begin(), own.end());
  table.add(prefix, static_cast<std::int32_t>(random.integer(1, table.page_size)));
}

// Two page tables of as many query tokens over one pool (8 q heads, 2 kv heads and head dim 128
// unless given, bf16, causal), and a PagedAttention whose run() was captured under the plan of the
// first: follow(table) plans a table, replays the capture and checks the replay against the fp64
// reference and an eager run's bits.
class CapturedPlans {
 public:
  CapturedPlans(harness::Random& random, const HostPageTable& first, const HostPageTable& second, int q_heads = 8, int kv_heads = 2,
                int head_dim = 128)
      : q_heads_(q_heads),
        kv_heads_(kv_heads),
        head_dim_(head_dim),
        pool_(random, slots_read(first, second), 16, kv_heads, head_dim, DType::bf16, PoolLayout{}),
        q_(random_queries(random, first.tokens(), q_heads, head_dim, DType::bf16)),
        step_(kCuda, pool_, q_, first.tokens(), q_heads, head_dim),
        captured_(first.tokens(), q_heads, head_dim),
        eager_(first.tokens(), q_heads, head_dim) {
    attention_.plan(first.view(), paged_shape(first, q_heads, kv_heads, head_dim, true), stream_);
    replay_.emplace(capture(stream_, [&] { attention_.run(step_.kv(), step_.q(), captured_.out(), captured_.lse(), stream_); }));
  }

  Outputs follow(const HostPageTable& table) {
    const PagedShape shape = paged_shape(table, q_heads_, kv_heads_, head_dim_, true);
    attention_.plan(table.view(), shape, stream_);
    const Outputs replayed = (*replay_)(captured_, stream_);
    expect_paged_match(kCuda, table, pool_, shape, q_, replayed);
    eager_.poison(stream_);
    attention_.run(step_.kv(), step_.q(), eager_.out(), eager_.lse(), stream_);
    expect_same_bits(replayed, eager_.read(stream_));
    return replayed;
  }

 private:
  static std::vector<std::int32_t> slots_read(const HostPageTable& first, const HostPageTable& second) {
    std::vector<std::int32_t> slots;
    note_slots_read(first, slots);
    note_slots_read(second, slots);
    return slots;
  }

  int q_heads_;
  int kv_heads_;
  int head_dim_;
  HostPool pool_;
  std::vector<float> q_;
  PagedStep step_;
  Stream stream_;
  GraphOutputs captured_;
  GraphOutputs eager_;
  cuda::PagedAttention attention_{KvLayout::nhd};
  std::optional<Replay> replay_;
};

// run() captured after plan A replays A; after plan B (as many query tokens, other pages and
// sharing) it replays B; after A again, A's bits. Each replay gives the bits of an eager run.
TEST(CudaPaged, CapturedRunReplaysEveryLaterPlan) {
  REQUIRE_HOPPER();
  harness::Random random(61);
  const int seqs = 16;
  PageAllocator allocator(random, 2000);
  HostPageTable a(16, 2);  // two groups of 8 interleaved in the batch, each on 30 pages
  const std::vector<std::int32_t> group_pages[] = {allocator.take(30), allocator.take(30)};
  for (int s = 0; s < seqs; ++s) add_with_own_pages(random, a, allocator, group_pages[s % 2], 3);
  HostPageTable b(16, 2);  // all on 10 pages, four subgroups on 20 more; sequence 5 the same as sequence 1
  const std::vector<std::int32_t> common = allocator.take(10);
  std::vector<std::vector<std::int32_t>> subgroup_pages;
  for (int g = 0; g < 4; ++g) {
    subgroup_pages.push_back(common);
    const std::vector<std::int32_t> more = allocator.take(20);
    subgroup_pages.back().insert(subgroup_pages.back().end(), more.begin(), more.end());
  }
  for (int s = 0; s < seqs; ++s) {
    if (s == 5) {
      const std::vector<std::int32_t> same_pages(b.pages(1).begin(), b.pages(1).end());  // a copy: add() grows the array it views
      b.add(same_pages, b.kv_last_page_len[1]);
    } else {
      add_with_own_pages(random, b, allocator, subgroup_pages[static_cast<std::size_t>(s % 4)], 2);
    }
  }
  SCOPED_TRACE("A: " + describe(a) + "; B: " + describe(b));
  CapturedPlans plans(random, a, b);
  const Outputs first = plans.follow(a);
  {
    SCOPED_TRACE("after plan B");
    plans.follow(b);
  }
  SCOPED_TRACE("after plan A again");
  expect_same_bits(first, plans.follow(a));
}

// A captured run follows plans with and without shared pages, back and forth: where every sequence
// reads only its own pages, each row has one state, which an eager run and a replay store as the
// output (the replay reads that it does from the workspace, and merges no row; experiment 69);
// where pages are shared, rows merge. At head dim 256 no wgmma kernel runs, so the merge is chained
// to the mma.sync kernel: with no row to merge its CTAs must still wait for it.
TEST(CudaPaged, CapturedRunFollowsPlansWithAndWithoutSharing) {
  REQUIRE_HOPPER();
  harness::Random random(63);
  const int seqs = 12;
  PageAllocator allocator(random, 1000);
  HostPageTable own(16, 2);  // every sequence on 1-3 pages of its own: one item per row, never split
  for (int s = 0; s < seqs; ++s) add_with_own_pages(random, own, allocator, {}, 3);
  HostPageTable shared(16, 2);  // three groups of four on 12 pages each, then pages of their own
  const std::vector<std::int32_t> group_pages[] = {allocator.take(12), allocator.take(12), allocator.take(12)};
  for (int s = 0; s < seqs; ++s) add_with_own_pages(random, shared, allocator, group_pages[s % 3], 2);
  SCOPED_TRACE("own: " + describe(own) + "; shared: " + describe(shared));
  for (const int head_dim : {128, 256}) {
    SCOPED_TRACE("head dim " + std::to_string(head_dim));
    CapturedPlans plans(random, shared, own, 8, 2, head_dim);  // captured under a plan that merges
    for (int round = 0; round < 2; ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      plans.follow(own);
      plans.follow(shared);
    }
  }
}

// A replayed grid is sized for any later plan (two CTAs per SM here), and the hardware's first CTAs
// of it share SMs past about half the SMs; where the live plan has more mma.sync tiles than that,
// at most one per SM and long enough to lose by sharing, each CTA claims its first tile at run time
// (cost_model::claims_first_tiles; experiment 67). Every tile must still run once, claimed or not.
// 64 sequences of 26-32 pages (8 q heads on one kv head, one query token each), each on the pages
// of one of `lists` distinct sequences: on the H200's 132 SMs the cost model plans 128 tiles of 2-4
// steps at 64 and 32 lists (claimed), 192 at 48, 122 tiles of one step at 16 and 61 at 8 (not
// claimed), and one wgmma item at 1.
TEST(CudaPaged, ReplayedGridsRunEveryTileAtAnyLiveCount) {
  REQUIRE_HOPPER();
  harness::Random random(89);
  const int seqs = 64;
  PageAllocator allocator(random, 2100);
  std::vector<std::vector<std::int32_t>> page_lists;
  for (int s = 0; s < seqs; ++s) page_lists.push_back(allocator.take(32 - s % 7));
  const auto table_of = [&](int lists) {
    HostPageTable table(16, 1);
    for (int s = 0; s < seqs; ++s) table.add(page_lists[static_cast<std::size_t>(s % lists)], 10);
    return table;
  };
  CapturedPlans plans(random, table_of(seqs), table_of(1), 8, 1);
  for (const int lists : {64, 48, 32, 16, 8, 1, 64}) {
    SCOPED_TRACE(std::to_string(lists) + " distinct page lists");
    plans.follow(table_of(lists));
  }
}

// What a captured workspace cannot follow is refused, and the last plan stays: a plan with more
// query tokens than the captured buffers hold, with other query tokens per sequence, or with more
// work than the workspace has room for (4x the first plan's, and at least 8192 KV runs).
TEST(CudaPaged, PlansTheCaptureCannotFollowAreRefused) {
  REQUIRE_HOPPER();
  harness::Random random(83);
  PageAllocator allocator(random, 10000);
  HostPageTable a(16, 2);  // 8 sequences on 4 pages, one page each of their own
  const std::vector<std::int32_t> shared = allocator.take(4);
  for (int s = 0; s < 8; ++s) add_with_own_pages(random, a, allocator, shared, 1);
  HostPageTable more_tokens(16, 2);  // 9 sequences
  for (int s = 0; s < 9; ++s) more_tokens.add(allocator.take(1), 16);
  HostPageTable one_query_each(16, 1);  // as many query tokens, one per sequence
  for (int s = 0; s < 16; ++s) one_query_each.add(allocator.take(1), 16);
  HostPageTable larger(16, 2);  // 8 sequences of 1100 shuffled pages: a run per page, beyond the room for 8192
  for (int s = 0; s < 8; ++s) larger.add(allocator.take(1100), 16);
  SCOPED_TRACE(describe(a));
  const PagedShape shape = paged_shape(a, 8, 2, 128, true);
  const HostPool pool(random, a, 2, 128, DType::bf16, PoolLayout{});
  const std::vector<float> q = random_queries(random, a.tokens(), 8, 128, DType::bf16);
  const PagedStep step(kCuda, pool, q, a.tokens(), 8, 128);
  const Stream stream;
  const GraphOutputs outputs(a.tokens(), 8, 128);
  cuda::PagedAttention attention;
  attention.plan(a.view(), shape, stream);
  const Replay replay(capture(stream, [&] { attention.run(step.kv(), step.q(), outputs.out(), outputs.lse(), stream); }));
  const Outputs first = replay(outputs, stream);
  expect_paged_match(kCuda, a, pool, shape, q, first);

  expect_error([&] { attention.plan(more_tokens.view(), shape, stream); }, ErrorCode::capacity_exhausted,
               "this plan has 18 query tokens; the q, out and lse that a CUDA graph captured hold 16");
  expect_error([&] { attention.plan(one_query_each.view(), shape, stream); }, ErrorCode::invalid_argument,
               "captured this plan's launches with 2 query tokens per sequence; a plan with 1");
  expect_error([&] { attention.plan(larger.view(), shape, stream); }, ErrorCode::capacity_exhausted,
               "the workspace that a CUDA graph captured holds");
  expect_same_bits(first, replay(outputs, stream));
  // The eager run of the kept plan too.
  const Outputs eager = [&] {
    outputs.poison(stream);
    attention.run(step.kv(), step.q(), outputs.out(), outputs.lse(), stream);
    return outputs.read(stream);
  }();
  expect_same_bits(first, eager);
}

// A random table (two causal query tokens per sequence) and its KV twice: in one interleaved
// [pages, 2, ...] tensor and in separate K and V pools, whose strides differ.
struct TwoPoolForms {
  harness::Random random;
  HostPageTable table;
  PagedShape shape;
  std::vector<float> q;
  HostPool interleaved;
  HostPool separate;
  PagedStep on_interleaved;
  PagedStep on_separate;

  TwoPoolForms(std::uint64_t seed, const TableOptions& options)
      : random(seed),
        table(random_page_table(random, options)),
        shape(paged_shape(table, 4, 2, 64, true)),
        q(random_queries(random, table.tokens(), 4, 64, DType::bf16)),
        interleaved(random, table, 2, 64, DType::bf16, PoolLayout{}),
        separate(random, table, 2, 64, DType::bf16, PoolLayout{KvLayout::nhd, true, 0}),
        on_interleaved(kCuda, interleaved, q, table.tokens(), 4, 64),
        on_separate(kCuda, separate, q, table.tokens(), 4, 64) {}
};

TableOptions two_query_options(std::int64_t max_shared_tokens) {
  TableOptions options;
  options.queries = 2;
  options.max_shared_tokens = max_shared_tokens;
  return options;
}

// A plan's work holds the strides it assumes (at first a [pages, 2, ...] tensor of its layout, then
// those of the last run): a run over pools of other strides loads the work again first, eagerly;
// under capture, without such a run before, it is refused.
TEST(CudaPaged, RunsOverPoolsOfOtherStridesThanPlanned) {
  REQUIRE_HOPPER();
  TableOptions options = two_query_options(300);
  options.max_own_tokens = 60;
  TwoPoolForms forms(67, options);
  auto& [random, table, shape, q, interleaved, separate, on_interleaved, on_separate] = forms;
  SCOPED_TRACE(describe(table));
  {
    SCOPED_TRACE("eager runs alternating between the pools");
    PagedBackend attention(kCuda, KvLayout::nhd);
    attention.plan(table.view(), shape);
    for (int round = 0; round < 2; ++round) {
      expect_paged_match(kCuda, table, separate, shape, q, on_separate.run(attention));
      expect_paged_match(kCuda, table, interleaved, shape, q, on_interleaved.run(attention));
    }
    attention.plan(table.view(), shape);  // assumes the interleaved strides of the last run
    expect_paged_match(kCuda, table, separate, shape, q, on_separate.run(attention));
  }
  const Stream stream;
  const GraphOutputs outputs(table.tokens(), 4, 64);
  {
    SCOPED_TRACE("captured with separate pools after a plan for interleaved ones");
    cuda::PagedAttention attention(KvLayout::nhd);
    attention.plan(table.view(), shape, stream);
    const auto run_on_separate = [&] { attention.run(on_separate.kv(), on_separate.q(), outputs.out(), outputs.lse(), stream); };
    expect_error([&] { capture(stream, run_on_separate); }, ErrorCode::invalid_argument,
                 "kv_cache's strides differ from those the plan was loaded for, and the stream is capturing");
    run_on_separate();  // an eager run with these strides first: then the capture replays right
    const Replay replay(capture(stream, run_on_separate));
    expect_paged_match(kCuda, table, separate, shape, q, replay(outputs, stream));
  }
  {
    SCOPED_TRACE("a plan for HND pools assumes HND's [pages, 2, ...] strides: captured without a run before");
    const HostPool hnd(random, table, 2, 64, DType::bf16, PoolLayout{KvLayout::hnd, false, 0});
    const PagedStep on_hnd(kCuda, hnd, q, table.tokens(), 4, 64);
    cuda::PagedAttention attention(KvLayout::hnd);
    attention.plan(table.view(), shape, stream);
    const Replay replay(capture(stream, [&] { attention.run(on_hnd.kv(), on_hnd.q(), outputs.out(), outputs.lse(), stream); }));
    expect_paged_match(kCuda, table, hnd, shape, q, replay(outputs, stream));
  }
}

// One PagedAttention planned for other heads, head dims and page sizes in turn (each change of
// heads or head dim gets a new workspace; of the pools' shape, the layout's default strides).
TEST(CudaPaged, HeadsHeadDimAndPageSizeChangeBetweenPlans) {
  REQUIRE_HOPPER();
  harness::Random random(71);
  struct Config {
    int q_heads;
    int kv_heads;
    int head_dim;
    int page_size;
  };
  const Config configs[] = {{8, 2, 128, 16}, {4, 1, 64, 16}, {16, 2, 128, 16}, {8, 2, 128, 16}, {32, 8, 256, 7}, {8, 8, 64, 64}, {8, 2, 128, 16}};
  PagedBackend attention(kCuda, KvLayout::nhd);
  for (const Config& config : configs) {
    TableOptions options;
    options.page_size = config.page_size;
    options.queries = 2;
    options.max_shared_tokens = 200;
    options.max_own_tokens = 50;
    PagedCase c;
    c.q_heads = config.q_heads;
    c.kv_heads = config.kv_heads;
    c.head_dim = config.head_dim;
    check_paged(attention, random_page_table(random, options), c, random);
  }
}

// Hydragen's shape in pages: one long prompt read by many sequences, 8 q heads on one kv head.
TEST(CudaPaged, LongPrefixSharedByManySequences) {
  REQUIRE_HOPPER();
  harness::Random random(73);
  for (const int queries : {1, 4}) {
    PageAllocator allocator(random, 1000);
    HostPageTable table(16, queries);
    const std::vector<std::int32_t> prompt = allocator.take(63);  // 1008 tokens
    for (int s = 0; s < 128; ++s) add_with_own_pages(random, table, allocator, prompt, 3);
    PagedCase c;
    c.q_heads = 8;
    c.kv_heads = 1;
    c.head_dim = 128;
    c.out_dtype = DType::bf16;
    check_paged(kCuda, table, c, random);
  }
}

// A shared prompt on pages consecutive in the pool, as an engine that allocates a prefill's pages
// together holds it: the wgmma producer reads a stage of whole consecutive pages as one 3-D box per
// 64 columns (experiment 84), and any other stage by its pages' 2-D boxes: here the stage with a
// page from elsewhere in the pool in the prompt's middle (a 3-D box taken there would read the
// unused page it replaced). Pages of 8, 16 and 32 tokens in [pages, 2, ...] NHD and HND tensors and
// separate HND pools; separate NHD pools (whose consecutive pages join into one run) and padded
// pages (whose page stride is no whole number of rows: no 3-D maps); head dims 64 and 128.
TEST(CudaPaged, SharedPromptOnConsecutivePages) {
  REQUIRE_HOPPER();
  harness::Random random(107);
  const PoolLayout layouts[] = {PoolLayout{}, PoolLayout{KvLayout::hnd, false, 0}, PoolLayout{KvLayout::hnd, true, 0},
                                PoolLayout{KvLayout::nhd, true, 0}, PoolLayout{KvLayout::nhd, false, 8}};
  for (const int page_size : {8, 16, 32}) {
    for (const PoolLayout& layout : layouts) {
      for (const int head_dim : {64, 128}) {
        std::vector<std::int32_t> prompt(static_cast<std::size_t>(640 / page_size));
        std::iota(prompt.begin(), prompt.end(), 3);
        prompt[prompt.size() / 2] = 95;  // beyond the prompt's ids, below the rows' own (100 on)
        PageAllocator allocator(random, 400);
        HostPageTable table(page_size, 1);
        for (int s = 0; s < 96; ++s) {
          std::vector<std::int32_t> pages = prompt;
          for (const std::int32_t own : allocator.take(random.integer(1, 3))) pages.push_back(own + 100);
          table.add(pages, static_cast<std::int32_t>(random.integer(1, page_size)));
        }
        PagedCase c;
        c.q_heads = 8;
        c.kv_heads = 2;
        c.head_dim = head_dim;
        c.layout = layout;
        c.out_dtype = DType::bf16;
        check_paged(kCuda, table, c, random);
      }
    }
  }
}

// Chunks of prefill: 64 query tokens per sequence on a shared prompt, causal or not, so that the
// shared pages' query rows fill wgmma tiles.
TEST(CudaPaged, ManyQueryTokensPerSequence) {
  REQUIRE_HOPPER();
  harness::Random random(101);
  for (const bool causal : {true, false}) {
    PageAllocator allocator(random, 200);
    HostPageTable table(16, 64);
    const std::vector<std::int32_t> prompt = allocator.take(19);  // 304 tokens
    for (int s = 0; s < 6; ++s) add_with_own_pages(random, table, allocator, prompt, 10);
    PagedCase c;
    c.q_heads = 8;
    c.kv_heads = 2;
    c.head_dim = 128;
    c.causal = causal;
    check_paged(kCuda, table, c, random);
  }
}

// What only the GPU checks: bf16 or f16 KV, q in the KV's dtype (tests/backends/), 16-byte strides
// and alignment, device pointers.
TEST(CudaPaged, ErrorsOnlyTheGpuChecks) {
  REQUIRE_HOPPER();
  harness::Random random(79);
  HostPageTable table(4, 2);
  table.add(std::vector<std::int32_t>{3, 1}, 2);
  table.add(std::vector<std::int32_t>{3, 0, 5}, 4);
  const PagedShape shape = paged_shape(table, 4, 2, 64, true);
  const std::vector<float> q = random_queries(random, table.tokens(), 4, 64, DType::bf16);
  const HostPool pool(random, table, 2, 64, DType::bf16, PoolLayout{});
  const PagedStep step(kCuda, pool, q, table.tokens(), 4, 64);
  const GraphOutputs outputs(table.tokens(), 4, 64);
  cuda::PagedAttention attention;
  attention.plan(table.view(), shape);
  EXPECT_NO_THROW(attention.run(step.kv(), step.q(), outputs.out(), outputs.lse()));
  CHUNKTREE_TEST_CUDA(cudaDeviceSynchronize());

  const auto expect_refused = [&](const std::function<void(PagedKv&, ConstTensorView&)>& change, const std::string& fragment) {
    SCOPED_TRACE(fragment);
    PagedKv kv = step.kv();
    ConstTensorView q_view = step.q();
    change(kv, q_view);
    expect_error([&] { attention.run(kv, q_view, outputs.out(), outputs.lse()); }, ErrorCode::invalid_argument, fragment);
  };
  std::vector<std::uint16_t> host_memory(pool.k_tensor().bytes() / 2);
  expect_refused([](PagedKv& kv, ConstTensorView&) { kv.page_stride += 1; }, "must be multiples of 16 bytes on the GPU");
  expect_refused([](PagedKv& kv, ConstTensorView&) { kv.token_stride = 100; },
                 "(page 1024, token 100, head 64 elements) must be multiples of 16 bytes");
  expect_refused([](PagedKv& kv, ConstTensorView&) { kv.k = static_cast<const char*>(kv.k) + 2; },
                 "kv_cache's K and V must start at 16-byte-aligned addresses");
  expect_refused([](PagedKv& kv, ConstTensorView&) { kv.v = static_cast<const char*>(kv.v) + 8; }, "16-byte-aligned addresses");
  expect_refused([&](PagedKv& kv, ConstTensorView&) { kv.k = host_memory.data(); },
                 "kv_cache's K is labelled as CUDA memory but its pointer is not device memory");
  expect_refused([&](PagedKv& kv, ConstTensorView&) { kv.v = host_memory.data(); }, "kv_cache's V is labelled as CUDA memory");
  expect_refused([&](PagedKv&, ConstTensorView& q_view) { q_view.data = host_memory.data(); }, "q is labelled as CUDA memory");
  expect_refused([](PagedKv&, ConstTensorView& q_view) { q_view.data = static_cast<const char*>(q_view.data) + 2; }, "q must be 16-byte aligned");
  expect_refused([](PagedKv& kv, ConstTensorView&) { kv.dtype = DType::f32; }, "kv_cache is f32; the CUDA backend runs bf16 or f16");
  // The refusals changed nothing: the plan still runs.
  const Outputs got = [&] {
    outputs.poison(nullptr);
    attention.run(step.kv(), step.q(), outputs.out(), outputs.lse());
    return outputs.read(nullptr);
  }();
  expect_paged_match(kCuda, table, pool, shape, q, got);
}

// plan() must be called outside any capture: under one it is refused with invalid_argument (as
// DeviceWork::load words it), the caller's capture goes on, and the last plan stays.
TEST(CudaPaged, PlanUnderCaptureIsRefusedAndTheCaptureGoesOn) {
  REQUIRE_HOPPER();
  harness::Random random(97);
  TableOptions options;
  options.queries = 2;
  const HostPageTable table = random_page_table(random, options);
  SCOPED_TRACE(describe(table));
  const PagedShape shape = paged_shape(table, 4, 2, 64, true);
  const HostPool pool(random, table, 2, 64, DType::bf16, PoolLayout{});
  const std::vector<float> q = random_queries(random, table.tokens(), 4, 64, DType::bf16);
  const PagedStep step(kCuda, pool, q, table.tokens(), 4, 64);
  const Stream stream;
  const GraphOutputs outputs(table.tokens(), 4, 64);
  cuda::PagedAttention attention;
  attention.plan(table.view(), shape, stream);
  const Replay replay(capture(stream, [&] {
    expect_error([&] { attention.plan(table.view(), shape, stream); }, ErrorCode::invalid_argument, "outside the stream capture");
    attention.run(step.kv(), step.q(), outputs.out(), outputs.lse(), stream);
  }));
  expect_paged_match(kCuda, table, pool, shape, q, replay(outputs, stream));
}

// A graph captured run() over one pool; then an eager run over pools of other strides (which loads
// the work again with those strides), and a plan() after it (which assumes them). The replays must
// still read the captured pool right, or the run that would change the captured work's strides
// must be refused.
TEST(CudaPaged, ReplaysAfterARunOverOtherStridesStayRight) {
  REQUIRE_HOPPER();
  TwoPoolForms forms(89, two_query_options(100));
  auto& [random, table, shape, q, interleaved, separate, on_interleaved, on_separate] = forms;
  SCOPED_TRACE(describe(table));
  const Stream stream;
  const GraphOutputs captured(table.tokens(), 4, 64);
  const GraphOutputs eager(table.tokens(), 4, 64);
  cuda::PagedAttention attention(KvLayout::nhd);
  attention.plan(table.view(), shape, stream);
  const Replay replay(capture(stream, [&] { attention.run(on_interleaved.kv(), on_interleaved.q(), captured.out(), captured.lse(), stream); }));
  expect_paged_match(kCuda, table, interleaved, shape, q, replay(captured, stream));
  try {
    eager.poison(stream);
    attention.run(on_separate.kv(), on_separate.q(), eager.out(), eager.lse(), stream);
    expect_paged_match(kCuda, table, separate, shape, q, eager.read(stream));
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument) << error.what();
  }
  {
    SCOPED_TRACE("replay after an eager run over separate pools");
    expect_paged_match(kCuda, table, interleaved, shape, q, replay(captured, stream));
  }
  attention.plan(table.view(), shape, stream);
  SCOPED_TRACE("replay after the plan that followed it");
  expect_paged_match(kCuda, table, interleaved, shape, q, replay(captured, stream));
}

}  // namespace
}  // namespace chunktree::testing
