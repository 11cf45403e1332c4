// Paged attention over an engine's own KV (chunktree/paged.hpp) for tests: page tables as an engine
// holds them (random ones with nested sharing, interleaved batch order and shuffled page ids),
// one layer's KV pool laid out as the engine lays it out (NHD or HND, one [pages, 2, ...] tensor or
// two pools, padded pages), the fp64 reference over the tokens each query token sees, and one
// step on either backend into poisoned outputs.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/paged.hpp"
#include "chunktree/reference.hpp"
#include "harness/random.hpp"
#include "support/backend.hpp"
#include "support/backend_levels.hpp"
#include "support/device_buffer.hpp"
#include "support/levels.hpp"

namespace chunktree::testing {

// Fisher–Yates with the harness's generator: the same order with every standard library.
template <typename T>
void shuffle_in_place(harness::Random& random, std::vector<T>& values) {
  for (std::size_t i = values.size(); i > 1; --i)
    std::swap(values[i - 1], values[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i) - 1))]);
}

// A step's page table as an engine holds it (FlashInfer's CSR arrays), one sequence at a time.
struct HostPageTable {
  int page_size = 16;
  int queries = 1;             // query tokens per sequence
  bool list_queries = false;   // pass qo_indptr even with one query token per sequence
  std::int32_t num_pages = 0;  // the pool holds pages 0 .. num_pages − 1 (at least those read)
  std::vector<std::int32_t> kv_indptr{0};
  std::vector<std::int32_t> kv_indices;
  std::vector<std::int32_t> kv_last_page_len;
  std::vector<std::int32_t> qo_indptr{0};

  HostPageTable(int page_size_, int queries_) : page_size(page_size_), queries(queries_) {}

  std::int64_t num_seqs() const { return static_cast<std::int64_t>(kv_last_page_len.size()); }
  std::int64_t tokens() const { return num_seqs() * queries; }
  std::span<const std::int32_t> pages(std::int64_t s) const {
    const auto at = static_cast<std::size_t>(s);
    return std::span<const std::int32_t>(kv_indices)
        .subspan(static_cast<std::size_t>(kv_indptr[at]), static_cast<std::size_t>(kv_indptr[at + 1] - kv_indptr[at]));
  }
  std::int64_t length(std::int64_t s) const {  // a sequence of no page (an engine's padding) holds none
    const auto held = static_cast<std::int64_t>(pages(s).size());
    return held == 0 ? 0 : (held - 1) * page_size + kv_last_page_len[static_cast<std::size_t>(s)];
  }
  void add(std::span<const std::int32_t> pages, std::int32_t last_page_len) {
    kv_indices.insert(kv_indices.end(), pages.begin(), pages.end());
    kv_indptr.push_back(static_cast<std::int32_t>(kv_indices.size()));
    kv_last_page_len.push_back(last_page_len);
    qo_indptr.push_back(qo_indptr.back() + queries);
    for (const std::int32_t page : pages) num_pages = std::max(num_pages, page + 1);
  }
  PageTableView view() const {
    const bool with_qo = queries > 1 || list_queries;
    return PageTableView{kv_indptr, kv_indices, kv_last_page_len,
                         with_qo ? std::span<const std::int32_t>(qo_indptr) : std::span<const std::int32_t>()};
  }
};

// The table in one line, for failure messages: each sequence's pages and the tokens of its last.
inline std::string describe(const HostPageTable& table) {
  std::string text =
      std::to_string(table.num_seqs()) + " seqs × " + std::to_string(table.queries) + " queries, pages of " + std::to_string(table.page_size) + ":";
  for (std::int64_t s = 0; s < table.num_seqs(); ++s) {
    text += " [";
    for (const std::int32_t page : table.pages(s)) text += std::to_string(page) + ",";
    if (text.back() == ',') text.pop_back();
    text += ']';
    text += std::to_string(table.kv_last_page_len[static_cast<std::size_t>(s)]);
  }
  return text;
}

struct TableOptions {
  int page_size = 16;
  int queries = 1;
  bool causal = true;
  int groups = 2;                       // top-level groups of sequences with common first pages
  int max_depth = 3;                    // groups nest up to this deep
  std::int64_t max_shared_tokens = 40;  // a group's pages beyond its parent's: 1 .. this many tokens' worth
  std::int64_t max_own_tokens = 30;     // each sequence's private tokens: 1 .. this many
  int singles = 1;                      // sequences that share nothing
  int padding = 0;                      // sequences of no page (an engine's padding of a graph's batch)
  std::int32_t unused_pages = 3;        // pool pages no sequence reads
  bool shuffle_pages = true;            // page ids in random order; else in allocation order (consecutive)
};

// A random table with sharing the way a serving engine's prefix cache makes it: groups of
// sequences whose page lists begin with the same pages, nested up to max_depth, each sequence with
// private pages after them (the last partly filled); in some groups a sequence identical to
// another (same pages, same last page) and one whose pages are a strict prefix of the group's
// (its last page full, or partly read); `padding` sequences of no page; then the batch shuffled, so
// that no group is contiguous.
inline HostPageTable random_page_table(harness::Random& random, const TableOptions& o) {
  const int page = o.page_size;
  const auto pages_for = [&](std::int64_t tokens) { return static_cast<int>((tokens + page - 1) / page); };
  struct Seq {
    std::vector<std::int32_t> pages;
    std::int32_t last;
  };
  std::vector<Seq> seqs;
  std::int32_t allocated = 0;  // pages are numbered in allocation order here, mapped to ids at the end
  const auto allocate = [&](int count, std::vector<std::int32_t>& into) {
    for (int i = 0; i < count; ++i) into.push_back(allocated++);
  };
  const auto long_enough = [&](const Seq& seq) {
    return !o.causal || static_cast<std::int64_t>(seq.pages.size() - 1) * page + seq.last >= o.queries;
  };
  // `prefix` then private pages for max_own_tokens at most, extended while too short for causal.
  const auto add_sequence = [&](const std::vector<std::int32_t>& prefix) {
    Seq seq{prefix, 0};
    const std::int64_t own = random.integer(1, o.max_own_tokens);
    allocate(pages_for(own), seq.pages);
    seq.last = static_cast<std::int32_t>((own - 1) % page + 1);
    while (!long_enough(seq)) {
      seq.last = page;
      allocate(1, seq.pages);
    }
    seqs.push_back(std::move(seq));
  };
  std::function<void(const std::vector<std::int32_t>&, int)> add_group = [&](const std::vector<std::int32_t>& parent, int depth) {
    std::vector<std::int32_t> shared = parent;
    allocate(pages_for(random.integer(1, o.max_shared_tokens)), shared);
    if (depth < o.max_depth && random.chance(0.6)) {
      for (int g = 0; g < 2; ++g) add_group(shared, depth + 1);
      if (random.chance(0.5)) add_sequence(shared);  // a sequence at this depth beside the subgroups
    } else {
      for (auto members = random.integer(2, 3); members > 0; --members) add_sequence(shared);
    }
    if (random.chance(0.3)) seqs.push_back(seqs.back());  // identical to another
    if (random.chance(0.3)) {                             // a strict prefix of the group's page lists
      Seq prefix{shared, random.chance(0.5) ? page : static_cast<std::int32_t>(random.integer(1, page))};
      if (long_enough(prefix)) seqs.push_back(std::move(prefix));
    }
  };
  for (int g = 0; g < o.groups; ++g) add_group({}, 1);
  for (int s = 0; s < o.singles; ++s) add_sequence({});
  for (int s = 0; s < o.padding; ++s) seqs.push_back(Seq{{}, 1});

  // Page ids: shuffled, or consecutive in allocation order after an offset (unused pages before and after).
  std::vector<std::int32_t> id(static_cast<std::size_t>(allocated + o.unused_pages));
  std::iota(id.begin(), id.end(), 0);
  if (o.shuffle_pages) {
    shuffle_in_place(random, id);
  } else {
    const auto offset = static_cast<std::int32_t>(random.integer(0, o.unused_pages));
    for (std::int32_t& page_id : id) page_id = (page_id + offset) % static_cast<std::int32_t>(id.size());
  }
  shuffle_in_place(random, seqs);

  HostPageTable table(page, o.queries);
  table.list_queries = random.chance(0.5);
  for (Seq& seq : seqs) {
    for (std::int32_t& p : seq.pages) p = id[static_cast<std::size_t>(p)];
    table.add(seq.pages, seq.last);
  }
  table.num_pages = static_cast<std::int32_t>(id.size());
  return table;
}

// How an engine lays out one layer's KV pool.
struct PoolLayout {
  KvLayout layout = KvLayout::nhd;
  bool separate = false;          // K and V as two tensors [pages, ...]; else one [pages, 2, ...] tensor, V one page after K
  std::int64_t page_padding = 0;  // unused elements after each page of K and of V (a view of a larger tensor)
};

inline std::string describe(const PoolLayout& pool) {
  return std::string(pool.layout == KvLayout::nhd ? "NHD" : "HND") + (pool.separate ? " separate K and V pools" : " [pages, 2, ...]") +
         (pool.page_padding > 0 ? " padded by " + std::to_string(pool.page_padding) : "");
}

// The layouts an engine may hand over: NHD and HND, interleaved or separate, contiguous or padded
// (padding of 8 elements: a multiple of 16 bytes in 16-bit dtypes, as the GPU needs).
inline std::vector<PoolLayout> every_pool_layout() {
  std::vector<PoolLayout> layouts;
  for (const KvLayout layout : {KvLayout::nhd, KvLayout::hnd}) {
    for (const bool separate : {false, true}) {
      for (const std::int64_t padding : {0, 8}) layouts.push_back(PoolLayout{layout, separate, padding});
    }
  }
  return layouts;
}

// The tokens each page of a pool holds for some sequence of `table` (at least those), grown into `slots`.
inline void note_slots_read(const HostPageTable& table, std::vector<std::int32_t>& slots) {
  slots.resize(std::max(slots.size(), static_cast<std::size_t>(table.num_pages)), 0);
  for (std::int64_t s = 0; s < table.num_seqs(); ++s) {
    const std::span<const std::int32_t> pages = table.pages(s);
    for (std::size_t j = 0; j < pages.size(); ++j) {
      const std::int32_t tokens = j + 1 == pages.size() ? table.kv_last_page_len[static_cast<std::size_t>(s)] : table.page_size;
      std::int32_t& slot = slots[static_cast<std::size_t>(pages[j])];
      slot = std::max(slot, tokens);
    }
  }
}

// One layer's KV pool on the host, as an engine lays it out. The tokens some sequence holds are
// random values of the dtype; every other element (padding, the free slots of last pages, unused
// pages) is NaN, as an engine's torch.empty pools may hold: reading one shows in the outputs.
class HostPool {
 public:
  HostPool(harness::Random& random, const HostPageTable& table, int kv_heads, int head_dim, DType dtype, const PoolLayout& layout)
      : HostPool(random, slots_of(table), table.page_size, kv_heads, head_dim, dtype, layout) {}

  // A pool of slots.size() pages whose page p holds slots[p] tokens.
  HostPool(harness::Random& random, const std::vector<std::int32_t>& slots, int page_size, int kv_heads, int head_dim, DType dtype,
           const PoolLayout& layout)
      : dtype_(dtype),
        layout_(layout),
        num_pages_(static_cast<std::int64_t>(slots.size())),
        page_size_(page_size),
        kv_heads_(kv_heads),
        head_dim_(head_dim) {
    const std::int64_t block = static_cast<std::int64_t>(page_size) * kv_heads * head_dim + layout.page_padding;  // one page of K or V
    page_stride_ = layout.separate ? block : 2 * block;
    v_offset_ = layout.separate ? 0 : block;
    token_stride_ = layout.layout == KvLayout::nhd ? static_cast<std::int64_t>(kv_heads) * head_dim : head_dim;
    head_stride_ = layout.layout == KvLayout::nhd ? head_dim : static_cast<std::int64_t>(page_size) * head_dim;
    const std::int64_t numel = std::max<std::int64_t>(1, num_pages_ * page_stride_);  // a pool of no page still has an address
    k_tensor_ = Blob(dtype, numel);                                                   // NaN bits
    if (layout.separate) v_tensor_ = Blob(dtype, numel);
    Blob& v_tensor = layout.separate ? v_tensor_ : k_tensor_;
    for (std::int64_t p = 0; p < num_pages_; ++p) {
      for (std::int64_t slot = 0; slot < slots[static_cast<std::size_t>(p)]; ++slot) {
        for (std::int64_t h = 0; h < kv_heads; ++h) {
          for (std::int64_t e = 0; e < head_dim; ++e) {
            k_tensor_.set(element(p, slot, h) + e, static_cast<float>(random.normal()));
            v_tensor.set(v_offset_ + element(p, slot, h) + e, static_cast<float>(random.normal()));
          }
        }
      }
    }
  }

  DType dtype() const { return dtype_; }
  const PoolLayout& layout() const { return layout_; }
  std::int64_t num_pages() const { return num_pages_; }
  // The storage as the engine allocates it: K's tensor, and V's when the pools are separate (else empty).
  const Blob& k_tensor() const { return k_tensor_; }
  const Blob& v_tensor() const { return v_tensor_; }

  // The pool as paged attention reads it, its tensors at k_tensor and v_tensor (the host blobs by
  // default; with one [pages, 2, ...] tensor, v_tensor is that tensor too).
  PagedKv view(Device device = Device::cpu, const void* k_tensor = nullptr, const void* v_tensor = nullptr) const {
    if (k_tensor == nullptr) k_tensor = k_tensor_.data();
    if (v_tensor == nullptr) v_tensor = layout_.separate ? v_tensor_.data() : k_tensor_.data();
    PagedKv kv;
    kv.k = k_tensor;
    kv.v = static_cast<const char*>(v_tensor) + v_offset_ * static_cast<std::int64_t>(dtype_size(dtype_));
    kv.dtype = dtype_;
    kv.device = device;
    kv.num_pages = num_pages_;
    kv.page_size = page_size_;
    kv.num_kv_heads = kv_heads_;
    kv.head_dim = head_dim_;
    kv.page_stride = page_stride_;
    kv.token_stride = token_stride_;
    kv.head_stride = head_stride_;
    return kv;
  }

  // K and V [tokens, kv_heads, head_dim] of the first `tokens` tokens of sequence s of `table`.
  void gather(const HostPageTable& table, std::int64_t s, std::int64_t tokens, std::vector<float>& k, std::vector<float>& v) const {
    const Blob& v_tensor = layout_.separate ? v_tensor_ : k_tensor_;
    k.clear();
    v.clear();
    const std::span<const std::int32_t> pages = table.pages(s);
    for (std::int64_t t = 0; t < tokens; ++t) {
      const std::int64_t p = pages[static_cast<std::size_t>(t / page_size_)];
      for (std::int64_t h = 0; h < kv_heads_; ++h) {
        for (std::int64_t e = 0; e < head_dim_; ++e) {
          k.push_back(k_tensor_.get(element(p, t % page_size_, h) + e));
          v.push_back(v_tensor.get(v_offset_ + element(p, t % page_size_, h) + e));
        }
      }
    }
  }

 private:
  static std::vector<std::int32_t> slots_of(const HostPageTable& table) {
    std::vector<std::int32_t> slots;
    note_slots_read(table, slots);
    return slots;
  }
  std::int64_t element(std::int64_t page, std::int64_t slot, std::int64_t head) const {
    return page * page_stride_ + slot * token_stride_ + head * head_stride_;
  }

  DType dtype_;
  PoolLayout layout_;
  std::int64_t num_pages_;
  std::int64_t page_size_;
  std::int64_t kv_heads_;
  std::int64_t head_dim_;
  std::int64_t page_stride_ = 0;
  std::int64_t token_stride_ = 0;
  std::int64_t head_stride_ = 0;
  std::int64_t v_offset_ = 0;  // elements from the K tensor's base to V's, in one [pages, 2, ...] tensor
  Blob k_tensor_;
  Blob v_tensor_;
};

// A paged shape for the table's page size; sm_scale 0 asks for 1/sqrt(head_dim).
inline PagedShape paged_shape(const HostPageTable& table, int q_heads, int kv_heads, int head_dim, bool causal, float sm_scale = 0.0f) {
  return PagedShape{q_heads, kv_heads, head_dim, table.page_size, causal, sm_scale};
}

// Every query token against the fp64 reference over the tokens it sees (gathered from the pool's
// pages), with the backend's tolerances.
inline void expect_paged_match(Backend backend, const HostPageTable& table, const HostPool& pool, const PagedShape& shape,
                               const std::vector<float>& q, const Outputs& got, DType out_dtype = DType::f32) {
  const std::size_t per_token = static_cast<std::size_t>(shape.num_qo_heads) * static_cast<std::size_t>(shape.head_dim);
  const double scale = shape.sm_scale != 0.0f ? shape.sm_scale : 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
  std::vector<double> expected(static_cast<std::size_t>(table.tokens()) * per_token);
  std::vector<double> expected_lse(static_cast<std::size_t>(table.tokens() * shape.num_qo_heads));
  std::vector<float> k;
  std::vector<float> v;
  for (std::int64_t s = 0; s < table.num_seqs(); ++s) {
    const std::int64_t length = table.length(s);
    pool.gather(table, s, length, k, v);  // what query token i sees is a prefix of it
    for (int i = 0; i < table.queries; ++i) {
      const std::int64_t seen = shape.causal && length > 0 ? length - table.queries + i + 1 : length;
      const auto token = static_cast<std::size_t>(s * table.queries + i);
      reference::attention(&q[token * per_token], shape.num_qo_heads, k.data(), v.data(), seen, shape.num_kv_heads, shape.head_dim, scale,
                           &expected[token * per_token], &expected_lse[token * static_cast<std::size_t>(shape.num_qo_heads)]);
    }
  }
  expect_close(backend, expected, expected_lse, got, shape.num_qo_heads, shape.head_dim, out_dtype, [&](std::size_t token) {
    const auto s = static_cast<std::int64_t>(token / static_cast<std::size_t>(table.queries));
    return "sequence " + std::to_string(s) + " (" + std::to_string(table.length(s)) + " tokens in " + std::to_string(table.pages(s).size()) +
           " pages) query token " + std::to_string(token % static_cast<std::size_t>(table.queries));
  });
}

// cpu::PagedAttention or cuda::PagedAttention, planned and run the same way (the CPU's with 2 threads).
class PagedBackend {
 public:
  explicit PagedBackend(Backend backend, KvLayout layout = KvLayout::nhd) : backend_(backend) {
    if (backend == Backend::cpu) {
      cpu_.emplace(AttentionParams{0, 0.0f, 2});
    } else {
      cuda_.emplace(layout);
    }
  }
  Backend backend() const { return backend_; }
  void plan(const PageTableView& table, const PagedShape& shape, cudaStream_t stream = nullptr) {
    if (cpu_) {
      cpu_->plan(table, shape);
    } else {
      cuda_->plan(table, shape, stream);
    }
  }
  void run(const PagedKv& kv, const ConstTensorView& q, const TensorView& out, const TensorView& lse = {}, cudaStream_t stream = nullptr) {
    if (cpu_) {
      cpu_->run(kv, q, out, lse);
    } else {
      cuda_->run(kv, q, out, lse, stream);
    }
  }
  std::uint64_t plan_fingerprint() const { return cpu_ ? cpu_->plan_fingerprint() : cuda_->plan_fingerprint(); }

 private:
  Backend backend_;
  std::optional<cpu::PagedAttention> cpu_;
  std::optional<cuda::PagedAttention> cuda_;
};

// Host bytes where a backend reads them: the host bytes themselves on the CPU, a device copy on the GPU.
class BackendBytes {
 public:
  BackendBytes(Backend backend, const void* host, std::size_t bytes) : data_(host) {
    if (backend == Backend::cuda) {
      device_ = bytes == 0 ? std::make_unique<DeviceBuffer>(0) : device_copy(host, bytes);  // empty q: an address, nothing to copy
      data_ = device_->data();
    }
  }
  const void* data() const { return data_; }

 private:
  const void* data_;
  std::unique_ptr<DeviceBuffer> device_;
};

// A step's pool and q in a backend's memory (q in cpu_q_dtype on the CPU; the CUDA backend takes
// it in the KV's dtype only), run as often as a test likes into fresh poisoned outputs.
class PagedStep {
 public:
  PagedStep(Backend backend, const HostPool& pool, const std::vector<float>& q, std::int64_t tokens, int q_heads, int head_dim,
            DType cpu_q_dtype = DType::f32)
      : backend_(backend),
        q_blob_(to_blob(q, backend == Backend::cpu ? cpu_q_dtype : pool.dtype())),
        k_tensor_(backend, pool.k_tensor().data(), pool.k_tensor().bytes()),
        v_tensor_(pool.layout().separate ? std::make_unique<BackendBytes>(backend, pool.v_tensor().data(), pool.v_tensor().bytes()) : nullptr),
        q_bytes_(backend, q_blob_.data(), q_blob_.bytes()),
        kv_(pool.view(device_of(backend), k_tensor_.data(), v_tensor_ ? v_tensor_->data() : k_tensor_.data())),
        q_(q_bytes_.data(), q_blob_.dtype, device_of(backend), {tokens, q_heads, head_dim}) {}

  const PagedKv& kv() const { return kv_; }
  const ConstTensorView& q() const { return q_; }

  // attention.run on the step into outputs of out_dtype poisoned with NaN, read back; lse passed
  // only when with_lse (else it comes back NaN).
  Outputs run(PagedBackend& attention, DType out_dtype = DType::f32, bool with_lse = true) const { return run(attention, kv_, out_dtype, with_lse); }
  // The same with another view of the KV (in this step's memory).
  Outputs run(PagedBackend& attention, const PagedKv& kv, DType out_dtype = DType::f32, bool with_lse = true) const {
    const std::int64_t tokens = q_.shape[0];
    const std::int64_t lse_numel = tokens * q_.shape[1];
    const std::int64_t numel = lse_numel * q_.shape[2];
    if (backend_ == Backend::cpu) {
      Blob out(out_dtype, numel);  // NaN bits
      std::vector<float> lse(static_cast<std::size_t>(lse_numel), std::numeric_limits<float>::quiet_NaN());
      const TensorView lse_view = with_lse ? TensorView{lse.data(), DType::f32, Device::cpu, {tokens, q_.shape[1]}} : TensorView{};
      attention.run(kv, q_, TensorView{out.data(), out_dtype, Device::cpu, q_.shape}, lse_view);
      return outputs_of(out.data(), out_dtype, numel, std::move(lse));
    }
    DeviceBuffer out(static_cast<std::size_t>(numel) * dtype_size(out_dtype));  // NaN bits
    DeviceBuffer lse(static_cast<std::size_t>(lse_numel) * sizeof(float));
    const TensorView lse_view = with_lse ? TensorView{lse.data(), DType::f32, Device::cuda, {tokens, q_.shape[1]}} : TensorView{};
    attention.run(kv, q_, TensorView{out.data(), out_dtype, Device::cuda, q_.shape}, lse_view);
    const std::vector<std::uint8_t> out_bytes = out.download<std::uint8_t>();  // synchronises first
    return outputs_of(out_bytes.data(), out_dtype, numel, lse.download<float>());
  }

 private:
  Backend backend_;
  Blob q_blob_;
  BackendBytes k_tensor_;
  std::unique_ptr<BackendBytes> v_tensor_;  // separate pools only
  BackendBytes q_bytes_;
  PagedKv kv_;
  ConstTensorView q_;
};

// One step of `table` on a backend: a pool of `layout`, random q, planned, run into poisoned
// outputs and checked against the reference.
struct PagedCase {
  int q_heads = 4;
  int kv_heads = 1;
  int head_dim = 64;
  DType dtype = DType::bf16;
  bool causal = true;
  float sm_scale = 0.0f;
  PoolLayout layout;
  DType out_dtype = DType::f32;
  DType cpu_q_dtype = DType::f32;
};

inline std::ostream& operator<<(std::ostream& stream, const PagedCase& c) {
  return stream << "q_heads " << c.q_heads << " kv_heads " << c.kv_heads << " d " << c.head_dim << " " << to_string(c.dtype)
                << (c.causal ? " causal" : " not causal") << " sm_scale " << c.sm_scale << ", " << describe(c.layout) << ", out "
                << to_string(c.out_dtype) << ", cpu q " << to_string(c.cpu_q_dtype);
}

// With `attention` planned anew (its last plan may have had other shapes).
inline void check_paged(PagedBackend& attention, const HostPageTable& table, const PagedCase& c, harness::Random& random) {
  SCOPED_TRACE(::testing::Message() << c << "; " << describe(table));
  const HostPool pool(random, table, c.kv_heads, c.head_dim, c.dtype, c.layout);
  const PagedShape shape = paged_shape(table, c.q_heads, c.kv_heads, c.head_dim, c.causal, c.sm_scale);
  const std::vector<float> q = random_queries(random, table.tokens(), c.q_heads, c.head_dim, c.dtype);
  attention.plan(table.view(), shape);
  const PagedStep step(attention.backend(), pool, q, table.tokens(), c.q_heads, c.head_dim, c.cpu_q_dtype);
  expect_paged_match(attention.backend(), table, pool, shape, q, step.run(attention, c.out_dtype), c.out_dtype);
}
inline void check_paged(Backend backend, const HostPageTable& table, const PagedCase& c, harness::Random& random) {
  PagedBackend attention(backend, c.layout.layout);
  check_paged(attention, table, c, random);
}

}  // namespace chunktree::testing
