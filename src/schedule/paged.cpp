// The paged front end's schedule: the page table's checks, the sharing it holds, and its work.
#include "schedule/paged.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "schedule/merge_lists.hpp"

namespace chunktree::work {
namespace {

struct Checker {
  const char* who;
  [[noreturn]] void fail(const std::string& message) const { throw Error(ErrorCode::invalid_argument, std::string(who) + ": " + message); }
};

std::string str(std::int64_t value) { return std::to_string(value); }

void check_shape(const Checker& checker, const PagedShape& shape) {
  if (shape.num_kv_heads < 1) checker.fail("num_kv_heads must be at least 1, got " + str(shape.num_kv_heads));
  if (shape.num_qo_heads < 1 || shape.num_qo_heads > 4096 || shape.num_qo_heads % shape.num_kv_heads != 0) {
    checker.fail("num_qo_heads (" + str(shape.num_qo_heads) + ") must be a multiple of num_kv_heads (" + str(shape.num_kv_heads) +
                 ") in 1..4096");
  }
  if (shape.head_dim != 64 && shape.head_dim != 128 && shape.head_dim != 256) {
    checker.fail("head_dim " + str(shape.head_dim) + " is not 64, 128 or 256");
  }
  if (shape.page_size < 1) checker.fail("page_size must be at least 1, got " + str(shape.page_size));
  if (const std::string problem = scale_problem("sm_scale", shape.sm_scale); !problem.empty()) checker.fail(problem);
}

// The query tokens per sequence that qo_indptr gives (the same for every sequence).
int queries_of(const Checker& checker, std::span<const std::int32_t> qo_indptr, std::size_t batch) {
  if (qo_indptr.empty()) return 1;
  if (qo_indptr.size() != batch + 1) {
    checker.fail("qo_indptr has " + str(static_cast<std::int64_t>(qo_indptr.size())) + " entries; expected batch + 1 = " +
                 str(static_cast<std::int64_t>(batch + 1)) + " (kv_indptr's size)");
  }
  if (qo_indptr[0] != 0) checker.fail("qo_indptr[0] is " + str(qo_indptr[0]) + "; it must be 0");
  if (batch == 0) return 1;
  const std::int64_t queries = static_cast<std::int64_t>(qo_indptr[1]) - qo_indptr[0];
  if (queries < 1 || queries > 4096) checker.fail("sequence 0 has " + str(queries) + " query tokens; each sequence has 1..4096");
  for (std::size_t s = 1; s < batch; ++s) {
    const std::int64_t own = static_cast<std::int64_t>(qo_indptr[s + 1]) - qo_indptr[s];
    if (own != queries) {
      checker.fail("sequence " + str(static_cast<std::int64_t>(s)) + " has " + str(own) + " query tokens but sequence 0 has " + str(queries) +
                   "; chunktree needs the same number of query tokens for every sequence of a call");
    }
  }
  return static_cast<int>(queries);
}

}  // namespace

PageStrides interleaved_strides(KvLayout layout, const PagedShape& shape) {
  const std::int64_t page = static_cast<std::int64_t>(shape.page_size) * shape.num_kv_heads * shape.head_dim;
  if (layout == KvLayout::nhd) return PageStrides{2 * page, static_cast<std::int64_t>(shape.num_kv_heads) * shape.head_dim, shape.head_dim};
  return PageStrides{2 * page, shape.head_dim, static_cast<std::int64_t>(shape.page_size) * shape.head_dim};
}

PageStrides check_paged_kv(const PagedKv& kv, const PagedShape& shape, Device device, std::int32_t max_page, const char* who) {
  const Checker checker{who};
  if (kv.page_size != shape.page_size || kv.num_kv_heads != shape.num_kv_heads || kv.head_dim != shape.head_dim) {
    checker.fail("kv_cache has pages of " + str(kv.page_size) + " tokens, " + str(kv.num_kv_heads) + " kv heads and head_dim " + str(kv.head_dim) +
                 "; the plan was made for " + str(shape.page_size) + ", " + str(shape.num_kv_heads) + " and " + str(shape.head_dim));
  }
  if (kv.device != device) {
    checker.fail("kv_cache is in " + std::string(to_string(kv.device)) + " memory; this backend needs it in " +
                 std::string(to_string(device)) + " memory");
  }
  if (kv.num_pages <= max_page) {
    checker.fail("the page table reads page " + str(max_page) + " but kv_cache holds " + str(kv.num_pages) + " pages");
  }
  if (kv.k == nullptr || kv.v == nullptr) checker.fail("kv_cache has no data");
  if (kv.dtype != DType::f32 && kv.dtype != DType::f16 && kv.dtype != DType::bf16) {
    checker.fail("kv_cache's dtype must be f32, f16 or bf16, got the value " + str(static_cast<int>(kv.dtype)));
  }
  // An axis of one element is never stepped along: any stride will do there (numpy gives 0 to an
  // axis added with None, e.g. the kv-head axis of an MQA pool kept as [pages, page, head_dim]),
  // and the stride used is 0.
  const auto used = [](std::int64_t extent, std::int64_t stride) { return extent == 1 && stride < 1 ? std::int64_t{0} : stride; };
  const PageStrides strides{used(kv.num_pages, kv.page_stride), used(kv.page_size, kv.token_stride), used(kv.num_kv_heads, kv.head_stride)};
  if ((kv.page_size > 1 && strides.token < 1) || (kv.num_kv_heads > 1 && strides.head < 1) || (kv.num_pages > 1 && strides.page < 1)) {
    checker.fail("kv_cache's strides (page " + str(strides.page) + ", token " + str(strides.token) + ", head " + str(strides.head) +
                 " elements) must be positive along every axis of more than one element (a reversed or broadcast view); pass a "
                 "contiguous pool (.contiguous(), numpy.ascontiguousarray)");
  }
  // Every element's offset (page, token, head, dim) must fit in 64 bits, as the kernels compute it; a
  // pool whose last element lies past 2^62 bytes is no memory there is.
  std::int64_t last = kv.head_dim - 1;
  bool too_far = false;
  for (const auto& [extent, stride] : {std::pair{kv.num_pages, strides.page}, std::pair{kv.page_size, strides.token},
                                       std::pair{kv.num_kv_heads, strides.head}}) {
    std::int64_t reach = 0;
    too_far = too_far || __builtin_mul_overflow(extent - 1, stride, &reach) || __builtin_add_overflow(last, reach, &last);
  }
  if (too_far || last > (std::int64_t{1} << 62) / static_cast<std::int64_t>(dtype_size(kv.dtype))) {
    checker.fail("kv_cache's strides (page " + str(strides.page) + ", token " + str(strides.token) + ", head " + str(strides.head) +
                 " elements) over " + str(kv.num_pages) + " pages reach past any memory; pass the pool's own strides");
  }
  if (device == Device::cuda) {
    // The kernels copy 16-byte pieces of each head's row.
    const auto bytes = static_cast<std::int64_t>(dtype_size(kv.dtype));
    for (const std::int64_t stride : {strides.page, strides.token, strides.head}) {
      if (stride * bytes % 16 != 0) {
        checker.fail("kv_cache's strides (page " + str(strides.page) + ", token " + str(strides.token) + ", head " + str(strides.head) +
                     " elements) must be multiples of 16 bytes on the GPU");
      }
    }
    if (reinterpret_cast<std::uintptr_t>(kv.k) % 16 != 0 || reinterpret_cast<std::uintptr_t>(kv.v) % 16 != 0) {
      checker.fail("kv_cache's K and V must start at 16-byte-aligned addresses on the GPU");
    }
  }
  return strides;
}

void PagedSchedule::assign(const PageTableView& table, const PagedShape& shape, const char* who) {
  // Everything is checked before anything changes: a refused table leaves the last plan in place.
  const Checker checker{who};
  check_shape(checker, shape);
  if (table.kv_indptr.empty()) checker.fail("kv_indptr is empty; it needs batch + 1 entries, starting with 0");
  const std::size_t batch = table.kv_indptr.size() - 1;
  if (batch > std::numeric_limits<std::int32_t>::max()) checker.fail("more than 2^31 − 1 sequences");
  if (table.kv_indptr[0] != 0) checker.fail("kv_indptr[0] is " + str(table.kv_indptr[0]) + "; it must be 0");
  for (std::size_t s = 0; s < batch; ++s) {
    const std::int64_t pages = static_cast<std::int64_t>(table.kv_indptr[s + 1]) - table.kv_indptr[s];
    if (pages < 0) {
      checker.fail("sequence " + str(static_cast<std::int64_t>(s)) + " has " + str(pages) +
                   " pages (kv_indptr[s + 1] − kv_indptr[s]); kv_indptr must not decrease");
    }
  }
  const std::int64_t listed = batch == 0 ? 0 : table.kv_indptr[batch];
  if (static_cast<std::int64_t>(table.kv_indices.size()) < listed) {
    checker.fail("kv_indices has " + str(static_cast<std::int64_t>(table.kv_indices.size())) + " entries but kv_indptr[batch] is " + str(listed));
  }
  if (table.kv_last_page_len.size() != batch) {
    checker.fail("kv_last_page_len has " + str(static_cast<std::int64_t>(table.kv_last_page_len.size())) + " entries; expected one per sequence (" +
                 str(static_cast<std::int64_t>(batch)) + ")");
  }
  const int queries = queries_of(checker, table.qo_indptr, batch);
  // Sequence s's tokens: every page full but the last. A sequence of no page (an engine's padding
  // of a CUDA graph's batch, as vLLM pads FlashInfer's) holds none; its kv_last_page_len is checked
  // as any other's, and not read.
  const auto length_of = [&](std::size_t s) {
    const std::int64_t pages = static_cast<std::int64_t>(table.kv_indptr[s + 1]) - table.kv_indptr[s];
    return pages == 0 ? 0 : (pages - 1) * shape.page_size + table.kv_last_page_len[s];
  };
  for (std::size_t s = 0; s < batch; ++s) {
    const std::int32_t last = table.kv_last_page_len[s];
    if (last < 1 || last > shape.page_size) {
      checker.fail("kv_last_page_len[" + str(static_cast<std::int64_t>(s)) + "] is " + str(last) + "; it must be 1.." + str(shape.page_size) +
                   " (page_size)");
    }
    const std::int64_t length = length_of(s);
    if (length > std::numeric_limits<std::int32_t>::max()) checker.fail("sequence " + str(static_cast<std::int64_t>(s)) + " holds more than 2^31 − 1 tokens");
    if (shape.causal && length > 0 && length < queries) {
      checker.fail("sequence " + str(static_cast<std::int64_t>(s)) + " holds " + str(length) + " tokens but has " + str(queries) +
                   " query tokens; with causal its last query tokens' K and V are its last tokens");
    }
  }
  // The lowest page id in one pass without a branch (it vectorises: half of a B = 1024 plan went to
  // a loop that stopped at the first negative id); the first negative one is looked for only then.
  std::int32_t lowest = 0;
  for (std::int64_t i = 0; i < listed; ++i) lowest = std::min(lowest, table.kv_indices[static_cast<std::size_t>(i)]);
  if (lowest < 0) {
    const auto negative = std::find_if(table.kv_indices.begin(), table.kv_indices.begin() + listed, [](std::int32_t id) { return id < 0; });
    checker.fail("kv_indices[" + str(negative - table.kv_indices.begin()) + "] is " + str(*negative) + "; page ids are ≥ 0");
  }
  shape_ = shape;
  queries_ = queries;
  find_sharing(table);
  // Each row's limit: the last position its first query token sees.
  row_limit_.resize(batch);
  for (std::size_t r = 0; r < batch; ++r) {
    const std::int64_t length = length_of(row_to_batch_[r]);
    row_limit_[r] = static_cast<std::int32_t>(shape.causal ? length - queries : length - 1);
  }
}

// A radix sort of the sequences by their pages, one page position at a time: a range of rows that
// agree on pages [0, depth) is extended while they all hold the same next page (the same id and
// the same tokens in it); those pages are a segment the whole range reads. Where they differ, the
// range is ordered by that page and each group of equal pages is a range of its own; a range of
// one row reads the rest of its sequence alone. Linear in the table's pages, plus the sorts at the
// points where sequences part. Its arrays are the last plan's, reused.
void PagedSchedule::find_sharing(const PageTableView& table) {
  const std::size_t batch = table.kv_indptr.size() - 1;
  const auto first_page = [&](std::uint32_t s) { return table.kv_indptr[s]; };
  const auto pages_of = [&](std::uint32_t s) { return static_cast<std::int64_t>(table.kv_indptr[s + 1]) - table.kv_indptr[s]; };
  const auto page_at = [&](std::uint32_t s, std::int64_t j) { return table.kv_indices[static_cast<std::size_t>(first_page(s) + j)]; };
  const auto tokens_at = [&](std::uint32_t s, std::int64_t j) { return j + 1 == pages_of(s) ? table.kv_last_page_len[s] : shape_.page_size; };

  std::vector<std::uint32_t>& order = row_to_batch_;
  order.resize(batch);
  std::iota(order.begin(), order.end(), 0u);
  pages_.clear();
  segments_.clear();
  max_page_ = -1;
  const auto add_segment = [&](std::uint32_t lead, std::int64_t begin, std::int64_t end, std::uint32_t row_begin, std::uint32_t row_end) {
    if (begin == end) return;
    Segment segment{row_begin, row_end, begin * shape_.page_size, 0, static_cast<std::uint32_t>(pages_.size()), 0};
    for (std::int64_t j = begin; j < end; ++j) {
      pages_.push_back(page_at(lead, j));
      max_page_ = std::max(max_page_, pages_.back());
      segment.tokens += tokens_at(lead, j);
    }
    segment.page_end = static_cast<std::uint32_t>(pages_.size());
    segments_.push_back(segment);
  };

  ranges_.clear();
  if (batch > 0) ranges_.push_back(Range{0, static_cast<std::uint32_t>(batch), 0});
  while (!ranges_.empty()) {
    const Range range = ranges_.back();
    ranges_.pop_back();
    const std::uint32_t lead = order[range.begin];
    if (range.end - range.begin == 1) {
      add_segment(lead, range.depth, pages_of(lead), range.begin, range.end);
      continue;
    }
    // How far every row holds the lead's pages: each row's pages compared in one sequential pass
    // (a page list at a time, not a page position at a time across rows: B = 1024 rows of 129
    // pages took 0.7 ms that way, every comparison a cache miss).
    std::int64_t depth = pages_of(lead);
    // Pointer arithmetic, not indexing: a sequence of no page at the table's end starts one past it.
    const std::int32_t* lead_pages = table.kv_indices.data() + first_page(lead);
    for (std::uint32_t r = range.begin + 1; r < range.end && depth > range.depth; ++r) {
      const std::uint32_t s = order[r];
      const std::int32_t* pages = table.kv_indices.data() + first_page(s);
      const std::int64_t limit = std::min(depth, pages_of(s));
      // Most rows hold all of the lead's pages: memcmp (vectorised) says so; the first differing
      // page is looked for only where they part.
      const std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(limit - range.depth, 0)) * sizeof(std::int32_t);
      std::int64_t held = std::memcmp(lead_pages + range.depth, pages + range.depth, bytes) == 0
                              ? std::max(limit, range.depth)
                              : std::mismatch(lead_pages + range.depth, lead_pages + limit, pages + range.depth).first - lead_pages;
      // Only the last page of a sequence holds fewer tokens: the same id there must hold as many.
      if (held > range.depth && tokens_at(s, held - 1) != tokens_at(lead, held - 1)) --held;
      depth = std::min(depth, held);
    }
    add_segment(lead, range.depth, depth, range.begin, range.end);
    // The rows by their next page (its id, then its tokens; 0 for rows whose pages end here, which
    // come first and read nothing more), sorted as plain keys: a comparator that looks the pages up
    // cost more than the rest of a B = 4096 plan.
    keyed_.clear();
    for (std::uint32_t r = range.begin; r < range.end; ++r) {
      const std::uint32_t s = order[r];
      const std::uint64_t key = pages_of(s) <= depth ? 0
                                                    : (std::uint64_t{1} << 63) | (static_cast<std::uint64_t>(page_at(s, depth)) << 31) |
                                                          static_cast<std::uint64_t>(tokens_at(s, depth));
      keyed_.emplace_back(key, s);
    }
    std::sort(keyed_.begin(), keyed_.end());  // by key, then by sequence: the same order every time
    std::size_t at = 0;
    while (at < keyed_.size() && keyed_[at].first == 0) ++at;
    for (std::size_t i = 0; i < keyed_.size(); ++i) order[range.begin + i] = keyed_[i].second;
    const std::size_t children = ranges_.size();
    while (at < keyed_.size()) {
      std::size_t end = at + 1;
      while (end < keyed_.size() && keyed_[end].first == keyed_[at].first) ++end;
      ranges_.push_back(Range{range.begin + static_cast<std::uint32_t>(at), range.begin + static_cast<std::uint32_t>(end), depth});
      at = end;
    }
    std::reverse(ranges_.begin() + static_cast<std::ptrdiff_t>(children), ranges_.end());  // the first group is taken next
  }
}

void PagedSchedule::spans(std::vector<SpanSize>& into) const {
  into.clear();
  for (const Segment& segment : segments_) into.push_back(SpanSize{segment.row_end - segment.row_begin, segment.tokens});
}

std::uint64_t PagedSchedule::fingerprint(std::int64_t max_item_tokens) const {
  // FNV-1a over 64-bit words, each scrambled first (splitmix64's finaliser) so that changes in
  // different words do not cancel.
  std::uint64_t digest = 14695981039346656037ull;
  const auto mix = [&](std::int64_t value) {
    std::uint64_t word = static_cast<std::uint64_t>(value);
    word = (word ^ (word >> 30)) * 0xbf58476d1ce4e5b9ull;
    word = (word ^ (word >> 27)) * 0x94d049bb133111ebull;
    digest ^= word ^ (word >> 31);
    digest *= 1099511628211ull;
  };
  mix(shape_.num_qo_heads);
  mix(shape_.num_kv_heads);
  mix(shape_.head_dim);
  mix(shape_.page_size);
  mix(shape_.causal ? 1 : 0);
  mix(shape_.sm_scale == 0.0f ? 0 : static_cast<std::int64_t>(std::bit_cast<std::uint32_t>(shape_.sm_scale)));  // −0 is 0
  mix(queries_);
  mix(item_limit(max_item_tokens));  // splits that cut alike are one plan
  mix(static_cast<std::int64_t>(row_to_batch_.size()));
  mix(static_cast<std::int64_t>(segments_.size()));
  mix(static_cast<std::int64_t>(pages_.size()));
  for (const std::uint32_t row : row_to_batch_) mix(row);
  for (const std::int32_t limit : row_limit_) mix(limit);
  for (const Segment& segment : segments_) {
    for (const std::int64_t field : {std::int64_t{segment.row_begin}, std::int64_t{segment.row_end}, segment.position, segment.tokens,
                                     std::int64_t{segment.page_begin}, std::int64_t{segment.page_end}}) {
      mix(field);
    }
  }
  for (const std::int32_t page : pages_) mix(page);
  return digest;
}

void PagedSchedule::to_work(const PageStrides& strides, std::size_t element_bytes, std::int64_t max_item_tokens, Work& into) const {
  into.runs.clear();
  into.items.clear();
  into.queries_per_seq = queries_;
  into.row_to_batch = row_to_batch_;
  into.row_limit = row_limit_;
  into.num_states = 0;
  const std::int64_t page_size = shape_.page_size;
  const auto bytes = static_cast<std::uint64_t>(element_bytes);
  for (const Segment& segment : segments_) {
    const std::int64_t step = item_limit(max_item_tokens);
    for (std::int64_t begin = 0; begin < segment.tokens; begin += step) {
      const std::int64_t end = std::min(segment.tokens, begin + step);
      Item& item = into.items.emplace_back();
      item.run_begin = static_cast<std::uint32_t>(into.runs.size());
      for (std::int64_t t = begin; t < end;) {
        const std::int64_t piece_end = std::min(end, (t / page_size + 1) * page_size);
        const std::int64_t page = pages_[segment.page_begin + static_cast<std::size_t>(t / page_size)];
        const auto offset = static_cast<std::uint64_t>(page * strides.page + (t % page_size) * strides.token) * bytes;
        const auto tokens = static_cast<std::int32_t>(piece_end - t);
        append_run(into.runs, item.run_begin, offset, offset, strides.token, strides.head, tokens,
                   static_cast<std::int32_t>(segment.position + t), bytes);
        t = piece_end;
      }
      item.run_end = static_cast<std::uint32_t>(into.runs.size());
      item.row_begin = segment.row_begin;
      item.row_end = segment.row_end;
      item.state_begin = into.num_states;
      item.tokens = end - begin;
      into.num_states = add_states(into.num_states, segment.row_end - segment.row_begin, "paged");
    }
  }
  mark_causal_items(into);
  build_merge_lists(into.items, static_cast<std::uint32_t>(row_to_batch_.size()), into.merge_begin, into.merge_states);
}

}  // namespace chunktree::work
