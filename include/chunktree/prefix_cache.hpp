// The prefix cache: one tree of token sequences over one pool of fixed-size KV chunks.
//
// Sequences that start with the same tokens share the KV of that prefix, found
// automatically at token granularity. Every layer uses the same tree and the same
// chunk ids; each layer has its own K and V pools laid out as
// [kv_head][chunk][position in chunk][head_dim] (PoolView; docs/DESIGN.md).
//
// Threads: a PrefixCache is not thread-safe. Any number of threads may read one cache at once
// (its const calls, make_plan, the backends' attend), but a mutation (add, append, fork, remove,
// write_kv) must not overlap any other call on the same cache: serialize them, e.g. with one
// mutex around every call that uses the cache. The cache checks this cheaply: a call that would
// overlap a mutation throws Error(invalid_argument, "... concurrent use from two threads ...")
// before it changes or reads anything, instead of corrupting the tree or reading a changing one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "chunktree/types.hpp"

namespace chunktree {

using Token = std::int32_t;
using ChunkId = std::int32_t;

struct CacheConfig {
  int num_layers = 1;
  int num_kv_heads = 1;
  int head_dim = 128;                  // 64, 128 or 256
  int chunk_size = 64;                 // tokens per chunk: 16, 32, 64 or 128
  DType dtype = DType::bf16;           // bf16 or f16 (f32 on the CPU only)
  std::int64_t capacity_chunks = 1024;  // chunks in the pool
  Device device = Device::cpu;
};

// Throws invalid_argument (or unsupported) explaining the first field that is out of range.
void validate(const CacheConfig& config);

// A sequence handle, of the cache that issued it only: another cache refuses it (caches made one
// after another issue distinct handles, up to 32767 of them). Handles of removed sequences are never
// reissued, no handle is SeqId{} (value 0: an unset handle is always unknown), and every value is
// below 2^63 (it fits an int64).
struct SeqId {
  std::uint64_t value = 0;
  friend bool operator==(SeqId, SeqId) = default;
};

// Where one token's K and V live: position `offset` of chunk `chunk`.
struct Slot {
  ChunkId chunk = 0;
  std::int32_t offset = 0;
  friend bool operator==(Slot, Slot) = default;
};

// Slots in device memory: `count` (chunk, offset) pairs of int32, contiguous.
struct DeviceSlots {
  const std::int32_t* pairs = nullptr;
  std::int64_t count = 0;
};

struct AddResult {
  SeqId seq;
  std::int64_t cached_tokens = 0;  // leading tokens whose KV the cache already holds
  std::vector<Slot> slots;         // where to write the KV of tokens [cached_tokens, size)
};

struct CacheStats {
  std::int64_t capacity_chunks = 0;
  std::int64_t chunks_in_use = 0;
  std::int64_t tokens_stored = 0;            // tokens whose KV the pool holds (shared ones once)
  std::int64_t tokens_without_sharing = 0;   // sum of all live sequences' lengths
  std::int64_t sequences = 0;
  std::int64_t nodes = 0;                    // tree nodes, root excluded
};

// A run of positions [begin, end) inside one chunk: the unit in which plans describe KV.
struct KvPiece {
  ChunkId chunk = 0;
  std::int32_t begin = 0;
  std::int32_t end = 0;
  std::int32_t size() const { return end - begin; }
  friend bool operator==(KvPiece, KvPiece) = default;
};

// Read access to one layer's K and V pools, for backends.
struct PoolView {
  const void* k = nullptr;
  const void* v = nullptr;
  DType dtype = DType::bf16;
  Device device = Device::cpu;
  // Element strides of [kv head][chunk][position][head_dim] (head_dim elements contiguous): a
  // (chunk, kv head) slice is chunk_size · head_dim contiguous elements, and a kv head's chunks c,
  // c + 1, ... follow one another.
  std::int64_t chunk_stride = 0;
  std::int64_t head_stride = 0;
  std::int64_t position_stride = 0;
};

class PrefixCache {
 public:
  explicit PrefixCache(const CacheConfig& config);
  ~PrefixCache();
  PrefixCache(PrefixCache&&) noexcept;
  PrefixCache& operator=(PrefixCache&&) noexcept;
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  const CacheConfig& config() const;

  // Adds a sequence. Its longest cached prefix (the longest common prefix with any live
  // sequence) is shared; the rest gets new slots.
  AddResult add(std::span<const Token> tokens);
  // Extends a sequence (decode: one token or several); returns a slot per new token.
  std::vector<Slot> append(SeqId seq, std::span<const Token> tokens);
  // A decode step's appends in one call: the same number k ≥ 1 of tokens for each of `seqs`
  // (distinct, live), tokens[i·k, (i+1)·k) to seqs[i]. Returns k slots per sequence, in that order;
  // the same tree and slots as calling append for each in order, but all or nothing: a bad
  // sequence or too few free chunks fails before anything changes.
  std::vector<Slot> append_batch(std::span<const SeqId> seqs, std::span<const Token> tokens);
  // n new sequences (1 to 2^24 a call) that share everything `seq` holds so far; `seq` itself stays.
  std::vector<SeqId> fork(SeqId seq, int n);
  // Drops a sequence; chunks no other sequence uses return to the pool.
  void remove(SeqId seq);

  // Writes K and V, each [slots.size(), num_kv_heads, head_dim], into the given slots of a layer.
  // A slot may be written while it holds a token of a live sequence: add or append returned it,
  // and a sequence that holds it (the one it was returned for, or a fork) has not been removed.
  // Every other slot is refused with invalid_argument naming it, before anything is written, as is
  // a slot given twice in one call, and a finite host K or V value that the cache's dtype rounds to
  // inf (f16: |x| ≥ 65520; device K and V are not read on the host, so there it is stored as inf).
  // A slot shared by several sequences (a cached prefix, a fork) holds the KV all of them read:
  // writing it changes their attention too, which is allowed; sharing assumes equal prefixes
  // have equal KV.
  // GPU cache: with K and V in device memory the copy is enqueued on `stream` (a cudaStream_t;
  // nullptr is the default stream) and the call returns at once, allocating nothing and waiting
  // for nothing, so it may be captured into a CUDA graph; K and V must stay valid until the stream
  // has run it, and attention on another stream must wait for it (an event). With K and V in host
  // memory the call converts and stages them and returns once they are in the pool.
  void write_kv(int layer, std::span<const Slot> slots, const ConstTensorView& k, const ConstTensorView& v, void* stream = nullptr);
  // The same with the slots in device memory (int32 [n, 2]: chunk, offset), K and V too, on a GPU
  // cache: what a captured CUDA graph needs when every step writes other slots (the caller copies
  // the step's slots into the same buffer, as engines do with their slot mapping). The kernel reads
  // the slots, so they cannot be checked here as host slots are: write only slots that add or
  // append returned, each once (a repeated one keeps whichever copy lands last); a slot outside the
  // pool is not written (never out of bounds).
  void write_kv(int layer, DeviceSlots slots, const ConstTensorView& k, const ConstTensorView& v, void* stream = nullptr);

  CacheStats stats() const;
  bool contains(SeqId seq) const;
  std::int64_t length(SeqId seq) const;
  std::vector<Token> tokens(SeqId seq) const;
  std::vector<Slot> slots(SeqId seq) const;  // one per token, in order
  std::int32_t refcount(ChunkId chunk) const;  // tree nodes that use the chunk; 0 when free

  // Bumped by every change of the tree (add, append, fork, remove); plans remember it.
  std::uint64_t version() const;

  // The tree as the planner sees it. Node ids are stable while the node lives.
  std::vector<std::int32_t> path(SeqId seq) const;  // node ids from the root's child down to the sequence's end
  void append_node_pieces(std::int32_t node, std::vector<KvPiece>& pieces) const;

  PoolView pool(int layer) const;

  class ReadGuard;

 private:
  struct Impl;
  Impl& impl() const;  // throws invalid_argument for a cache that was moved from
  std::unique_ptr<Impl> impl_;
};

// Shared use of a cache for longer than one call (the backends hold one across attend, make_plan
// one while it reads the tree): while a guard lives, a mutation of the cache, from any thread,
// throws instead of changing what the holder reads; other readers may hold guards too. Making
// one throws invalid_argument if a mutation is running. `caller` names the holder in that error.
class PrefixCache::ReadGuard {
 public:
  ReadGuard(const PrefixCache& cache, const char* caller);
  ~ReadGuard();
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;

  // Reads through the held guard, without a guard per call (make_plan reads every row).
  std::int64_t length(SeqId seq) const;  // as the cache's length
  // For each of `seqs` in turn, in one call (make_plan's batch): its path (node ids, the root's
  // child first) as nodes[path_begin[i], path_begin[i + 1]) and its length as lengths[i]. The
  // vectors are resized to that, not cleared first, so that a caller who keeps them from one batch
  // to the next of its size pays for no zeroing. Stops before the first handle that is not live and
  // returns its index (seqs.size() when all are live), so that the caller may check what came
  // before it; length() of that handle throws the cache's error for it.
  std::size_t write_paths(std::span<const SeqId> seqs, std::vector<std::int32_t>& nodes, std::vector<std::uint32_t>& path_begin,
                          std::vector<std::int64_t>& lengths) const;
  // Appends the KV of consecutive nodes of one path (each the previous one's child) as pieces in
  // KV order, a piece joined to its predecessor when they are adjacent in one chunk (the cache's
  // append_node_pieces, node by node, gives the same positions unjoined).
  void append_pieces(std::span<const std::int32_t> nodes, std::vector<KvPiece>& pieces) const;
  // Nodes [begin, end) of a node list.
  struct NodeRun {
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
  };
  // The pieces of each of `runs` (consecutive nodes of one path) of `nodes` in turn, as
  // append_pieces gives them, in one call (a plan's spans): written at the front of `room`, the
  // count so far after run i in piece_ends[i] (one place per run); returns the count. A node of t
  // tokens takes at most t / chunk_size + 2 pieces; too little room throws invalid_argument before
  // anything is written past it.
  std::size_t write_pieces(std::span<const std::int32_t> nodes, std::span<const NodeRun> runs, std::span<KvPiece> room,
                           std::span<std::uint32_t> piece_ends) const;
  std::int64_t node_tokens(std::int32_t node) const;  // the tokens of the node's pieces
  // (Node ids, here and in append_pieces and write_pieces, are those path() and write_paths give:
  // live nodes other than the root. Any other id throws invalid_argument.)

 private:
  const Impl& impl_;  // not the cache: a moved-from cache has no Impl
  std::atomic<std::int32_t>& users_;
};

}  // namespace chunktree
