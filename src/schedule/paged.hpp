// The paged front end's schedule: checks an engine's page table (chunktree/paged.hpp), finds which
// pages sequences share, and turns it into Work over one layer's K and V pools. Planned once per
// step; the work's offsets depend only on the pools' strides, so every layer of the step runs it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "chunktree/paged.hpp"
#include "chunktree/plan.hpp"
#include "schedule/work.hpp"

namespace chunktree::work {

// The element strides a work's offsets were computed with (PagedKv's).
struct PageStrides {
  std::int64_t page = 0;
  std::int64_t token = 0;
  std::int64_t head = 0;
  bool operator==(const PageStrides&) const = default;
};

// The strides of contiguous pools of `layout` with both pools in one [pages, 2, ...] tensor
// (FlashInfer's and vLLM's paged layout): what a plan assumes until a run shows others.
PageStrides interleaved_strides(KvLayout layout, const PagedShape& shape);

// Checks `kv` against the plan's shape (dtype, device, strides, alignment; what to fix goes in the
// message, prefixed by `who`) and returns its strides.
PageStrides check_paged_kv(const PagedKv& kv, const PagedShape& shape, Device device, std::int32_t max_page, const char* who);

class PagedSchedule {
 public:
  // Checks the table and the shape (what to fix goes in the message, prefixed by `who`; a refused
  // table changes nothing) and finds the sharing: the sequences are ordered so that every group of
  // sequences with the same first pages is a contiguous range of rows, and those pages become one
  // segment that the range reads (at least two rows), the rest of each sequence a segment of its
  // own. What it needs of the table is copied (the engine may reuse its arrays after plan()); the
  // arrays of the last plan are reused, so a decode loop's plans allocate nothing once they fit.
  // A bad_alloc while it finds the sharing leaves it half-made: the backends assign a spare
  // schedule and swap it in.
  void assign(const PageTableView& table, const PagedShape& shape, const char* who);

  const PagedShape& shape() const { return shape_; }
  std::int64_t num_seqs() const { return static_cast<std::int64_t>(row_to_batch_.size()); }
  int queries_per_seq() const { return queries_; }
  std::int32_t max_page() const { return max_page_; }  // −1 for no page
  // Each segment's rows and tokens, for the item split's cost model, into `into` (its memory reused).
  void spans(std::vector<SpanSize>& into) const;
  // A digest of the plan (shape, rows' order and limits, segments and their pages) with the item
  // split a backend runs it at: equal wherever the same table and shape were planned, so that the
  // ranks of a tensor-parallel engine can check that they run the same schedule.
  std::uint64_t fingerprint(std::int64_t max_item_tokens) const;

  // The work with segments cut into items of at most item_limit(max_item_tokens), offsets in bytes
  // from the K and V pools' bases for these strides and the KV's element size.
  void to_work(const PageStrides& strides, std::size_t element_bytes, std::int64_t max_item_tokens, Work& into) const;

 private:
  struct Segment {
    std::uint32_t row_begin;
    std::uint32_t row_end;
    std::int64_t position;      // of the segment's first token in its sequences
    std::int64_t tokens;
    std::uint32_t page_begin;   // pages_[page_begin .. page_end): full pages but the last
    std::uint32_t page_end;
  };
  struct Range {
    std::uint32_t begin;
    std::uint32_t end;
    std::int64_t depth;  // its rows agree on pages [0, depth)
  };
  void find_sharing(const PageTableView& table);

  PagedShape shape_{};
  int queries_ = 1;
  std::int32_t max_page_ = -1;
  std::vector<std::uint32_t> row_to_batch_;
  std::vector<std::int32_t> row_limit_;
  std::vector<std::int32_t> pages_;
  std::vector<Segment> segments_;
  // find_sharing's scratch, kept for the next plan.
  std::vector<Range> ranges_;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> keyed_;
};

}  // namespace chunktree::work
