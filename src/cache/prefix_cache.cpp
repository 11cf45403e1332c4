#include "chunktree/prefix_cache.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "cache/radix_tree.hpp"
#include "chunktree/numeric.hpp"
#include "runtime/memory.hpp"

namespace chunktree {
namespace {

// Versions come from one counter for all caches, so a plan made from one cache is never
// mistaken for current on another.
std::uint64_t next_version() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

// The cache's use counter holds the number of calls reading it, or kMutating while a mutation
// runs: far below zero, so that a reader's brief increment while it backs off never makes the
// counter read as free.
constexpr std::int32_t kMutating = -(1 << 30);

const char* const kThreadingRule =
    "PrefixCache is not thread-safe: run add, append, fork, remove and write_kv only while no other call on the same "
    "cache runs (e.g. hold one mutex around every call that uses the cache)";

// Exclusive use of the cache for one mutating call; throws, before anything changes, if any
// other call is using the cache.
class MutationGuard {
 public:
  MutationGuard(std::atomic<std::int32_t>& users, const char* caller) : users_(users) {
    std::int32_t idle = 0;
    if (!users_.compare_exchange_strong(idle, kMutating, std::memory_order_acquire)) {
      throw Error(ErrorCode::invalid_argument,
                  std::string(caller) + ": another call is using the cache right now (concurrent use from two threads, or a "
                                        "PrefixCache::ReadGuard held across this call); " + kThreadingRule);
    }
  }
  ~MutationGuard() { users_.fetch_sub(kMutating, std::memory_order_release); }
  MutationGuard(const MutationGuard&) = delete;
  MutationGuard& operator=(const MutationGuard&) = delete;

 private:
  std::atomic<std::int32_t>& users_;
};

// Host K or V values that the cache's dtype cannot hold are refused before anything is written: a
// finite value that a narrower dtype rounds to inf, as attention over it is NaN. Such values are
// those at least halfway from the dtype's largest finite value to the next power of two (ties go to
// the even inf), compared in one pass (prefix_cache_test checks the bounds against round_to).
void expect_representable(const ConstTensorView& kv, const char* name, DType cache_dtype, int kv_heads, int head_dim) {
  const bool narrower = kv.dtype != cache_dtype && (kv.dtype == DType::f32 || cache_dtype == DType::f16);
  if (kv.device != Device::cpu || cache_dtype == DType::f32 || !narrower) return;
  const float limit = first_magnitude_rounding_to_inf(cache_dtype);
  const std::int64_t elements = kv.numel();
  const auto* f32 = kv.dtype == DType::f32 ? static_cast<const float*>(kv.data) : nullptr;
  for (std::int64_t i = 0; i < elements; ++i) {
    const float value = f32 != nullptr ? f32[i] : load_element(kv.data, kv.dtype, i);
    if (!(std::fabs(value) >= limit) || std::isinf(value)) continue;  // NaN and inf are stored as they are
    const std::int64_t row = i / head_dim;
    char shown[32];
    std::snprintf(shown, sizeof shown, "%g", static_cast<double>(value));
    fail_prefix_cache(ErrorCode::invalid_argument,
                      std::string("write_kv: ") + name + " holds " + shown + " (slot " + std::to_string(row / kv_heads) + ", kv head " +
                          std::to_string(row % kv_heads) + ", dim " + std::to_string(i % head_dim) + "), which the cache's " +
                          std::string(to_string(cache_dtype)) + " rounds to inf; scale K and V" +
                          (cache_dtype == DType::f16 ? ", or make the cache bf16" : ", or make the cache f32 (CPU only)"));
  }
}

// A slot twice in one write: which K and V it keeps would depend on the order of the copies (on the
// GPU, on which thread stores last), so the call is refused, naming both.
void expect_distinct(std::span<const Slot> slots, std::int32_t chunk_size) {
  const auto key = [&](const Slot& slot) { return std::int64_t{slot.chunk} * chunk_size + slot.offset; };
  // Slots as add and append return them run in increasing order: distinct without a sort or an allocation.
  const auto increasing = [&](const Slot& a, const Slot& b) { return key(a) >= key(b); };
  if (std::adjacent_find(slots.begin(), slots.end(), increasing) == slots.end()) return;
  std::vector<std::pair<std::int64_t, std::size_t>> keys(slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) keys[i] = {key(slots[i]), i};
  std::sort(keys.begin(), keys.end());
  const auto same = std::adjacent_find(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first == b.first; });
  if (same == keys.end()) return;
  const Slot slot = slots[same->second];
  fail_prefix_cache(ErrorCode::invalid_argument, "write_kv: slots " + std::to_string(same->second) + " and " + std::to_string((same + 1)->second) +
                                                     " are both (chunk " + std::to_string(slot.chunk) + ", offset " + std::to_string(slot.offset) +
                                                     "); write each slot once a call");
}

}  // namespace

// The tree (what is stored where), the KV pools, the guard's use counter and the version.
struct PrefixCache::Impl {
  CacheConfig config;
  RadixTree tree;
  std::uint64_t version = next_version();
  mutable std::atomic<std::int32_t> users{0};  // calls in progress, see MutationGuard and ReadGuard

  // K pools of all layers, then V pools: [2][layer][kv_head][chunk][position][dim], in host
  // memory or in device memory.
  std::vector<std::byte> host_storage;
  cuda_memory::DeviceAllocation device_storage;

  explicit Impl(const CacheConfig& c) : config(validated(c)), tree(c.chunk_size, c.capacity_chunks) {
    const std::size_t bytes = static_cast<std::size_t>(2 * std::int64_t{config.num_layers} * layer_elements()) * dtype_size(config.dtype);
    if (config.device == Device::cpu) {
      try {
        host_storage.resize(bytes);
      } catch (const std::bad_alloc&) {  // like the GPU allocation's error: what was asked, and what to change
        throw Error(ErrorCode::invalid_argument, "PrefixCache: the pools' " + std::to_string(bytes) +
                                                     " bytes of host memory could not be allocated; use a smaller capacity_chunks, or fewer "
                                                     "layers or kv heads");
      }
    } else {
      cuda_memory::require_current_hopper();
      device_storage = cuda_memory::DeviceAllocation(bytes);
      cuda_memory::fill_zero(device_storage.data(), bytes);  // unwritten slots read as zeros, never as garbage
    }
  }

  // The config, checked before the tree and the pools are sized by it.
  static const CacheConfig& validated(const CacheConfig& c) {
    validate(c);
    return c;
  }

  std::byte* storage() const {
    return config.device == Device::cpu ? const_cast<std::byte*>(host_storage.data()) : static_cast<std::byte*>(device_storage.data());
  }
  std::int64_t layer_elements() const {
    return config.capacity_chunks * static_cast<std::int64_t>(config.num_kv_heads) * config.chunk_size * config.head_dim;
  }

  void touch() { version = next_version(); }
};

void validate(const CacheConfig& config) {
  auto bad = [](const std::string& message) { throw Error(ErrorCode::invalid_argument, "CacheConfig: " + message); };
  if (config.num_layers < 1) bad("num_layers must be at least 1, got " + std::to_string(config.num_layers));
  if (config.num_kv_heads < 1) bad("num_kv_heads must be at least 1, got " + std::to_string(config.num_kv_heads));
  if (config.head_dim != 64 && config.head_dim != 128 && config.head_dim != 256) {
    bad("head_dim must be 64, 128 or 256, got " + std::to_string(config.head_dim));
  }
  if (config.chunk_size != 16 && config.chunk_size != 32 && config.chunk_size != 64 && config.chunk_size != 128) {
    bad("chunk_size must be 16, 32, 64 or 128 tokens, got " + std::to_string(config.chunk_size));
  }
  if (config.capacity_chunks < 1 || config.capacity_chunks > (std::int64_t{1} << 30)) {
    bad("capacity_chunks must be between 1 and 2^30, got " + std::to_string(config.capacity_chunks));
  }
  if (config.num_layers > 4096 || config.num_kv_heads > 4096) {
    bad("num_layers and num_kv_heads must be at most 4096, got " + std::to_string(config.num_layers) + " and " +
        std::to_string(config.num_kv_heads));
  }
  // K and V of every layer: at most 2^62 bytes, so that every offset fits in 64 bits.
  const double pool_bytes = 2.0 * config.num_layers * static_cast<double>(config.capacity_chunks) * config.num_kv_heads *
                            config.chunk_size * config.head_dim * 4.0;
  if (pool_bytes > 0x1p62) bad("the pools would exceed 2^62 bytes; use fewer chunks, layers or heads");
  if (config.dtype != DType::f32 && config.dtype != DType::f16 && config.dtype != DType::bf16) {
    bad("dtype must be f32, f16 or bf16, got the value " + std::to_string(static_cast<int>(config.dtype)));
  }
  if (config.device != Device::cpu && config.device != Device::cuda) {
    bad("device must be cpu or cuda, got the value " + std::to_string(static_cast<int>(config.device)));
  }
  if (config.device == Device::cuda && config.dtype == DType::f32) {
    bad("dtype f32 is supported on the CPU only; use bf16 or f16 on the GPU");
  }
}

PrefixCache::PrefixCache(const CacheConfig& config) : impl_(std::make_unique<Impl>(config)) {}
PrefixCache::~PrefixCache() = default;
PrefixCache::PrefixCache(PrefixCache&&) noexcept = default;
PrefixCache& PrefixCache::operator=(PrefixCache&&) noexcept = default;

PrefixCache::Impl& PrefixCache::impl() const {
  if (impl_ == nullptr) throw Error(ErrorCode::invalid_argument, "this PrefixCache was moved from; use the cache it was moved into");
  return *impl_;
}

PrefixCache::ReadGuard::ReadGuard(const PrefixCache& cache, const char* caller) : impl_(cache.impl()), users_(cache.impl().users) {
  if (users_.fetch_add(1, std::memory_order_acquire) < 0) {
    users_.fetch_sub(1, std::memory_order_relaxed);
    throw Error(ErrorCode::invalid_argument,
                std::string(caller) + ": another thread is changing the cache right now (concurrent use from two threads); " +
                    kThreadingRule);
  }
}
PrefixCache::ReadGuard::~ReadGuard() { users_.fetch_sub(1, std::memory_order_release); }

std::int64_t PrefixCache::ReadGuard::length(SeqId seq) const { return impl_.tree.sequence(seq).length; }

std::size_t PrefixCache::ReadGuard::write_paths(std::span<const SeqId> seqs, std::vector<std::int32_t>& nodes,
                                                std::vector<std::uint32_t>& path_begin, std::vector<std::int64_t>& lengths) const {
  const RadixTree& tree = impl_.tree;
  // Two walks up each path: the first counts its nodes, so that the second writes them in place
  // (no growth check per node, no reversal).
  path_begin.resize(seqs.size() + 1);
  lengths.resize(seqs.size());
  path_begin[0] = 0;
  std::uint32_t end = 0;
  std::size_t live = 0;
  for (; live < seqs.size(); ++live) {
    const RadixTree::Sequence* sequence = tree.find_sequence(seqs[live]);
    if (sequence == nullptr) break;
    end += tree.depth(sequence->node);
    path_begin[live + 1] = end;
    lengths[live] = sequence->length;
  }
  path_begin.resize(live + 1);
  lengths.resize(live);
  nodes.resize(end);
  for (std::size_t i = 0; i < live; ++i) {
    tree.write_path(tree.found_sequence(seqs[i]).node, std::span(nodes).subspan(path_begin[i], path_begin[i + 1] - path_begin[i]));
  }
  return live;
}

void PrefixCache::ReadGuard::append_pieces(std::span<const std::int32_t> nodes, std::vector<KvPiece>& pieces) const {
  std::size_t room = 0;
  for (const std::int32_t node : nodes) room += impl_.tree.live_node(node, "PrefixCache::ReadGuard::append_pieces").pieces.size();
  const std::size_t first = pieces.size();
  pieces.resize(first + room);
  const NodeRun all{0, static_cast<std::uint32_t>(nodes.size())};
  std::uint32_t count = 0;
  impl_.tree.write_pieces(nodes, std::span(&all, 1), std::span(pieces).subspan(first), std::span(&count, 1));
  pieces.resize(first + count);
}

std::size_t PrefixCache::ReadGuard::write_pieces(std::span<const std::int32_t> nodes, std::span<const NodeRun> runs, std::span<KvPiece> room,
                                                 std::span<std::uint32_t> piece_ends) const {
  return impl_.tree.write_pieces(nodes, runs, room, piece_ends);
}

std::int64_t PrefixCache::ReadGuard::node_tokens(std::int32_t node_index) const {
  return static_cast<std::int64_t>(impl_.tree.live_node(node_index, "PrefixCache::ReadGuard::node_tokens").tokens.size());
}

const CacheConfig& PrefixCache::config() const { return impl().config; }

// The mutations of the tree: each under the guard, and a new version once it has changed.

AddResult PrefixCache::add(std::span<const Token> tokens) {
  const MutationGuard guard(impl().users, "PrefixCache::add");
  AddResult result = impl().tree.add(tokens);
  impl().touch();
  return result;
}

std::vector<Slot> PrefixCache::append(SeqId seq, std::span<const Token> tokens) {
  const MutationGuard guard(impl().users, "PrefixCache::append");
  std::vector<Slot> slots = impl().tree.append(seq, tokens);
  impl().touch();
  return slots;
}

std::vector<Slot> PrefixCache::append_batch(std::span<const SeqId> seqs, std::span<const Token> tokens) {
  const MutationGuard guard(impl().users, "PrefixCache::append_batch");
  std::vector<Slot> slots = impl().tree.append_batch(seqs, tokens);
  impl().touch();
  return slots;
}

std::vector<SeqId> PrefixCache::fork(SeqId seq, int n) {
  const MutationGuard guard(impl().users, "PrefixCache::fork");
  std::vector<SeqId> children = impl().tree.fork(seq, n);
  impl().touch();
  return children;
}

void PrefixCache::remove(SeqId seq) {
  const MutationGuard guard(impl().users, "PrefixCache::remove");
  impl().tree.remove(seq);
  impl().touch();
}

void PrefixCache::write_kv(int layer, DeviceSlots slots, const ConstTensorView& k, const ConstTensorView& v, void* stream) {
  const MutationGuard guard(impl().users, "PrefixCache::write_kv");
  const CacheConfig& c = impl().config;
  if (c.device != Device::cuda) fail_prefix_cache(ErrorCode::invalid_argument, "write_kv: slots in device memory need a GPU cache; pass host slots");
  if (layer < 0 || layer >= c.num_layers) {
    fail_prefix_cache(ErrorCode::invalid_argument,
         "write_kv: layer " + std::to_string(layer) + " is out of range; the cache has " + std::to_string(c.num_layers) + " layers");
  }
  if (slots.count < 0) fail_prefix_cache(ErrorCode::invalid_argument, "write_kv: the slot count is negative");
  if (slots.count > 0) cuda_memory::expect_device_pointer(slots.pairs, "write_kv: slots");
  const std::vector<std::int64_t> shape{slots.count, c.num_kv_heads, c.head_dim};
  expect_tensor(k, "write_kv: k", {DType::f32, DType::f16, DType::bf16}, Device::cuda, shape);
  expect_tensor(v, "write_kv: v", {DType::f32, DType::f16, DType::bf16}, Device::cuda, shape);
  cuda_memory::scatter_kv(pool(layer), c.num_kv_heads, c.head_dim, slots, c.capacity_chunks, c.chunk_size, k, v, stream);
}

void PrefixCache::write_kv(int layer, std::span<const Slot> slots, const ConstTensorView& k, const ConstTensorView& v, void* stream) {
  const MutationGuard guard(impl().users, "PrefixCache::write_kv");
  const Impl& s = impl();
  const CacheConfig& c = s.config;
  if (layer < 0 || layer >= c.num_layers) {
    fail_prefix_cache(ErrorCode::invalid_argument,
         "write_kv: layer " + std::to_string(layer) + " is out of range; the cache has " + std::to_string(c.num_layers) + " layers");
  }
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), c.num_kv_heads, c.head_dim};
  // K and V may come from the host or, for a GPU cache, from the device.
  const Device source_device = c.device == Device::cuda ? k.device : Device::cpu;
  expect_tensor(k, "write_kv: k", {DType::f32, DType::f16, DType::bf16}, source_device, shape);
  expect_tensor(v, "write_kv: v", {DType::f32, DType::f16, DType::bf16}, source_device, shape);
  expect_representable(k, "k", c.dtype, c.num_kv_heads, c.head_dim);
  expect_representable(v, "v", c.dtype, c.num_kv_heads, c.head_dim);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const Slot slot = slots[i];
    if (s.tree.holds_token(slot)) continue;
    const bool outside = slot.chunk < 0 || slot.chunk >= c.capacity_chunks || slot.offset < 0 || slot.offset >= c.chunk_size;
    fail_prefix_cache(ErrorCode::invalid_argument,
                      "write_kv: slot " + std::to_string(i) + " (chunk " + std::to_string(slot.chunk) + ", offset " +
                          std::to_string(slot.offset) + ") " +
                          (outside ? "is outside the pool of " + std::to_string(c.capacity_chunks) + " chunks of " +
                                         std::to_string(c.chunk_size) + " positions"
                                   : std::string("holds no token of a live sequence (it was never returned, or every sequence "
                                                 "holding it was removed)")) +
                          "; write only slots that add or append returned, while a sequence holding them is live");
  }
  expect_distinct(slots, c.chunk_size);
  const PoolView view = pool(layer);
  if (c.device == Device::cuda) {
    cuda_memory::scatter_kv(view, c.num_kv_heads, c.head_dim, slots, k, v, stream);
    return;
  }
  void* k_pool = const_cast<void*>(view.k);
  void* v_pool = const_cast<void*>(view.v);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    for (int h = 0; h < c.num_kv_heads; ++h) {
      const std::int64_t destination =
          slots[i].chunk * view.chunk_stride + h * view.head_stride + slots[i].offset * view.position_stride;
      const std::int64_t source = (static_cast<std::int64_t>(i) * c.num_kv_heads + h) * c.head_dim;
      for (int d = 0; d < c.head_dim; ++d) {
        store_element(k_pool, c.dtype, destination + d, load_element(k.data, k.dtype, source + d));
        store_element(v_pool, c.dtype, destination + d, load_element(v.data, v.dtype, source + d));
      }
    }
  }
}

CacheStats PrefixCache::stats() const {
  const ReadGuard guard(*this, "PrefixCache::stats");
  return impl().tree.stats();
}

bool PrefixCache::contains(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::contains");
  return impl().tree.find_sequence(seq) != nullptr;
}

std::int64_t PrefixCache::length(SeqId seq) const { return ReadGuard(*this, "PrefixCache::length").length(seq); }

std::vector<std::int32_t> PrefixCache::path(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::path");
  const RadixTree& tree = impl().tree;
  const std::int32_t end = tree.sequence(seq).node;
  std::vector<std::int32_t> nodes(tree.depth(end));
  tree.write_path(end, nodes);
  return nodes;
}

std::vector<Token> PrefixCache::tokens(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::tokens");
  std::vector<Token> result;
  for (std::int32_t node : path(seq)) {
    const auto& t = impl().tree.node(node).tokens;
    result.insert(result.end(), t.begin(), t.end());
  }
  return result;
}

std::vector<Slot> PrefixCache::slots(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::slots");
  std::vector<KvPiece> pieces;
  guard.append_pieces(path(seq), pieces);  // joined pieces expand to the same slots
  std::vector<Slot> result;
  for (const KvPiece& piece : pieces) {
    for (std::int32_t p = piece.begin; p < piece.end; ++p) result.push_back(Slot{piece.chunk, p});
  }
  return result;
}

std::int32_t PrefixCache::refcount(ChunkId chunk) const {
  const ReadGuard guard(*this, "PrefixCache::refcount");
  if (chunk < 0 || chunk >= impl().config.capacity_chunks) {
    fail_prefix_cache(ErrorCode::invalid_argument, "refcount: chunk " + std::to_string(chunk) + " is outside the pool of " +
                                                       std::to_string(impl().config.capacity_chunks) + " chunks");
  }
  return impl().tree.refcount(chunk);
}

std::uint64_t PrefixCache::version() const {
  const ReadGuard guard(*this, "PrefixCache::version");
  return impl().version;
}

void PrefixCache::append_node_pieces(std::int32_t node, std::vector<KvPiece>& pieces) const {
  const ReadGuard reading(*this, "PrefixCache::append_node_pieces");
  (void)impl().tree.live_node(node, "PrefixCache::append_node_pieces");  // throws for an id that is not one
  reading.append_pieces(std::span(&node, 1), pieces);  // a node's pieces never join
}

// config() and pool() need no guard: they read only what never changes after construction.
PoolView PrefixCache::pool(int layer) const {
  const Impl& s = impl();
  if (layer < 0 || layer >= s.config.num_layers) {
    fail_prefix_cache(ErrorCode::invalid_argument, "pool: layer " + std::to_string(layer) + " is out of range; the cache has " +
                                          std::to_string(s.config.num_layers) + " layers");
  }
  const std::size_t element = dtype_size(s.config.dtype);
  const std::byte* k = s.storage() + static_cast<std::size_t>(layer * s.layer_elements()) * element;
  const std::byte* v = k + static_cast<std::size_t>(s.config.num_layers * s.layer_elements()) * element;
  PoolView view;
  view.k = k;
  view.v = v;
  view.dtype = s.config.dtype;
  view.device = s.config.device;
  // Head-major: each kv head's chunks follow one another, so that a sequence whose chunks were
  // handed out in a run (a prompt's, from a fresh pool) is one contiguous run per kv head
  // (docs/KERNEL_NOTES.md, experiment 54).
  view.position_stride = s.config.head_dim;
  view.chunk_stride = static_cast<std::int64_t>(s.config.chunk_size) * s.config.head_dim;
  view.head_stride = s.config.capacity_chunks * view.chunk_stride;
  return view;
}

}  // namespace chunktree
