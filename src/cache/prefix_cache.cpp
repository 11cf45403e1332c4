#include "chunktree/prefix_cache.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <utility>

#include "chunktree/numeric.hpp"
#include "runtime/memory.hpp"

namespace chunktree {
namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, "PrefixCache: " + message); }

// Versions come from one counter for all caches, so a plan made from one cache is never
// mistaken for current on another.
std::uint64_t next_version() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

constexpr std::int32_t kRoot = 0;
constexpr std::int32_t kNoNode = -1;

// A tree node: a run of tokens stored contiguously in chunk positions, held as the pieces of its
// chunks in order: the first from the node's first token's position, the last to past its last
// token's, the others whole. Token i of the node lives in pieces[(first + i) / C].chunk at position
// (first + i) % C, where first = pieces[0].begin. Kept as pieces rather than chunk ids so that a
// plan's pieces are a copy per node (writing them field by field bounded make_plan at B = 1024).
struct Node {
  std::vector<std::int32_t> children;
  std::vector<Token> tokens;
  std::vector<KvPiece> pieces;
  std::int32_t sequences_ending = 0;  // live sequences whose last token is this node's last
  bool live = false;
};

struct Sequence {
  std::int32_t node = kNoNode;
  std::uint32_t generation = 1;  // from 1: no handle is ever 0, the value of SeqId{} (an unset handle)
  std::int64_t length = 0;
  bool live = false;
};

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

// Copies `from` (not empty) to `to`, which it does not overlap: a short node's pieces in 16-byte
// blocks (the last one overlapping the one before), inline, where a memmove call per node of a
// plan cost more (84 bytes at b1024_p2k); a long node's with memcpy, which copies them faster.
void copy_pieces(std::span<const KvPiece> from, KvPiece* to) {
  const auto* source = reinterpret_cast<const std::byte*>(from.data());
  auto* target = reinterpret_cast<std::byte*>(to);
  const std::size_t bytes = from.size_bytes();
  if (bytes > 128) {
    std::memcpy(target, source, bytes);
  } else if (bytes < 16) {
    *to = from[0];
  } else {
    for (std::size_t at = 0; at + 16 < bytes; at += 16) std::memcpy(target + at, source + at, 16);
    std::memcpy(target + bytes - 16, source + bytes - 16, 16);
  }
}

// Room for `extra` more elements, so that a call can allocate before its first change; grows
// geometrically (an exact reserve would copy the whole vector on every call that adds one).
template <typename T>
void reserve_more(std::vector<T>& values, std::size_t extra) {
  if (values.capacity() - values.size() < extra) values.reserve(std::max(values.size() + extra, 2 * values.capacity()));
}

}  // namespace

struct PrefixCache::Impl {
  using NodeRun = ReadGuard::NodeRun;

  CacheConfig config;
  std::uint64_t version = next_version();

  std::vector<Node> nodes;
  // parents[i]: node i's parent (kNoNode for the root and free nodes); kept apart from Node so that
  // walking up a path reads 4 bytes a node (make_plan walks every row's, twice).
  std::vector<std::int32_t> parents;
  std::vector<std::int32_t> free_nodes;
  std::vector<Sequence> sequences;
  std::vector<std::uint32_t> free_sequences;

  std::vector<std::int32_t> chunk_refcount;  // nodes using the chunk
  std::vector<std::int32_t> chunk_used;      // positions claimed, from 0
  std::vector<ChunkId> free_chunks;          // a stack; lowest ids handed out first

  std::int64_t live_sequences = 0;
  std::int64_t tokens_without_sharing = 0;
  std::int64_t tokens_stored = 0;

  mutable std::atomic<std::int32_t> users{0};  // calls in progress, see MutationGuard and ReadGuard

  // append_batch's scratch, kept between calls so that a decode step allocates nothing: a chunk's
  // positions claimed so far in the batch (-1 between calls), and the call that last saw a sequence.
  std::vector<std::int32_t> claimed_scratch;
  std::vector<std::uint64_t> seen_in_batch;
  std::uint64_t batches = 0;

  // K pools of all layers, then V pools: [2][layer][kv_head][chunk][position][dim], in host
  // memory or in device memory.
  std::vector<std::byte> host_storage;
  cuda_memory::DeviceAllocation device_storage;

  explicit Impl(const CacheConfig& c) : config(c) {
    validate(config);
    nodes.emplace_back();
    parents.push_back(kNoNode);
    nodes[kRoot].live = true;
    chunk_refcount.assign(static_cast<std::size_t>(config.capacity_chunks), 0);
    chunk_used.assign(static_cast<std::size_t>(config.capacity_chunks), 0);
    free_chunks.reserve(static_cast<std::size_t>(config.capacity_chunks));
    for (std::int64_t c = config.capacity_chunks - 1; c >= 0; --c) free_chunks.push_back(static_cast<ChunkId>(c));
    const std::size_t bytes = static_cast<std::size_t>(2 * std::int64_t{config.num_layers} * layer_elements()) * dtype_size(config.dtype);
    if (config.device == Device::cpu) {
      host_storage.resize(bytes);
    } else {
      cuda_memory::require_current_hopper();
      device_storage = cuda_memory::DeviceAllocation(bytes);
      cuda_memory::fill_zero(device_storage.data(), bytes);  // unwritten slots read as zeros, never as garbage
    }
  }

  std::byte* storage() const {
    return config.device == Device::cpu ? const_cast<std::byte*>(host_storage.data()) : static_cast<std::byte*>(device_storage.data());
  }

  std::int32_t chunk_size() const { return config.chunk_size; }
  std::int64_t chunk_elements() const {
    return static_cast<std::int64_t>(config.num_kv_heads) * config.chunk_size * config.head_dim;
  }
  std::int64_t layer_elements() const { return config.capacity_chunks * chunk_elements(); }

  // ---- handles ----
  static SeqId make_id(std::uint32_t index, std::uint32_t generation) {
    return SeqId{(static_cast<std::uint64_t>(generation) << 32) | index};
  }
  static std::uint32_t index_of(SeqId id) { return static_cast<std::uint32_t>(id.value & 0xffffffffu); }
  // The live sequence of a handle, or nullptr.
  const Sequence* find_sequence(SeqId id) const {
    const std::uint32_t index = index_of(id);
    const auto generation = static_cast<std::uint32_t>(id.value >> 32);
    if (index >= sequences.size() || !sequences[index].live || sequences[index].generation != generation) return nullptr;
    return &sequences[index];
  }
  const Sequence& sequence(SeqId id) const {
    const Sequence* found = find_sequence(id);
    if (found == nullptr) {
      fail(ErrorCode::unknown_sequence,
           "unknown or removed sequence handle " + std::to_string(id.value) + "; use a handle returned by add or fork "
           "that has not been removed");
    }
    return *found;
  }
  Sequence& sequence(SeqId id) { return const_cast<Sequence&>(std::as_const(*this).sequence(id)); }

  SeqId new_sequence(std::int32_t node, std::int64_t length) {
    std::uint32_t index;
    if (!free_sequences.empty()) {
      index = free_sequences.back();
      free_sequences.pop_back();
    } else {
      index = static_cast<std::uint32_t>(sequences.size());
      sequences.emplace_back();
    }
    Sequence& s = sequences[index];
    s.node = node;
    s.length = length;
    s.live = true;
    nodes[static_cast<std::size_t>(node)].sequences_ending += 1;
    live_sequences += 1;
    tokens_without_sharing += length;
    return make_id(index, s.generation);
  }

  // ---- chunk geometry ----
  // Position just past the node's last token, inside its last chunk (1..C), or 0 for the root.
  static std::int32_t end_position(const Node& node) { return node.pieces.empty() ? 0 : node.pieces.back().end; }
  // Free positions after the node's end in its last chunk that a continuation may claim:
  // only when nothing past the node's end has been claimed (the first writer keeps the tail).
  std::int32_t claimable_tail(const Node& node) const {
    return node.pieces.empty() ? 0 : tail_when_claimed(node, chunk_used[static_cast<std::size_t>(node.pieces.back().chunk)]);
  }
  // The same when `claimed` positions of the node's last chunk are taken.
  std::int32_t tail_when_claimed(const Node& node, std::int32_t claimed) const {
    const std::int32_t end = end_position(node);
    return claimed == end ? chunk_size() - end : 0;
  }
  std::int64_t chunks_for(std::int64_t tokens, std::int32_t tail) const {
    const std::int64_t rest = std::max<std::int64_t>(0, tokens - tail);
    return (rest + chunk_size() - 1) / chunk_size();
  }
  void require_chunks(std::int64_t needed) const {
    if (needed > static_cast<std::int64_t>(free_chunks.size())) {
      fail(ErrorCode::capacity_exhausted,
           "capacity exhausted: this call needs " + std::to_string(needed) + " new chunks but only " +
               std::to_string(free_chunks.size()) + " of " + std::to_string(config.capacity_chunks) +
               " are free; remove sequences or create the cache with a larger capacity_chunks");
    }
  }
  ChunkId take_chunk() {
    const ChunkId chunk = free_chunks.back();
    free_chunks.pop_back();
    chunk_refcount[static_cast<std::size_t>(chunk)] = 1;
    chunk_used[static_cast<std::size_t>(chunk)] = 0;
    return chunk;
  }

  // Stores `tokens` after the node's current last token (claiming its tail first, then new
  // chunks) and returns their slots. Capacity must have been checked.
  void extend(std::int32_t node_index, std::span<const Token> tokens, std::vector<Slot>& slots) {
    std::size_t done = 0;
    while (done < tokens.size()) {
      Node& node = nodes[static_cast<std::size_t>(node_index)];
      std::int32_t tail = claimable_tail(node);
      if (tail == 0) {
        node.pieces.push_back(KvPiece{take_chunk(), 0, 0});
        tail = chunk_size();
      }
      KvPiece& last = node.pieces.back();
      const ChunkId chunk = last.chunk;
      const std::int32_t position = chunk_used[static_cast<std::size_t>(chunk)];
      const auto count = static_cast<std::int32_t>(std::min<std::size_t>(static_cast<std::size_t>(tail), tokens.size() - done));
      for (std::int32_t i = 0; i < count; ++i) slots.push_back(Slot{chunk, position + i});
      node.tokens.insert(node.tokens.end(), tokens.begin() + static_cast<std::ptrdiff_t>(done),
                         tokens.begin() + static_cast<std::ptrdiff_t>(done) + count);
      chunk_used[static_cast<std::size_t>(chunk)] = position + count;
      last.end = position + count;
      done += static_cast<std::size_t>(count);
    }
    tokens_stored += static_cast<std::int64_t>(tokens.size());
  }

  // Room for `extra` more nodes (see reserve_more).
  void reserve_nodes(std::size_t extra) {
    reserve_more(nodes, extra);
    reserve_more(parents, extra);
  }

  // A new, empty child of `parent` that will continue in the parent's claimable tail, if any.
  // A fresh live node; may reallocate `nodes`, so take references only afterwards.
  std::int32_t allocate_node(std::int32_t parent) {
    std::int32_t index;
    if (!free_nodes.empty()) {
      index = free_nodes.back();
      free_nodes.pop_back();
    } else {
      index = static_cast<std::int32_t>(nodes.size());
      nodes.emplace_back();
      parents.emplace_back();
    }
    Node& node = nodes[static_cast<std::size_t>(index)];
    node = Node{};
    node.live = true;
    parents[static_cast<std::size_t>(index)] = parent;
    return index;
  }

  std::int32_t new_child(std::int32_t parent) {
    const std::int32_t index = allocate_node(parent);
    Node& child = nodes[static_cast<std::size_t>(index)];
    Node& parent_node = nodes[static_cast<std::size_t>(parent)];
    if (claimable_tail(parent_node) > 0) {  // the child starts as an empty piece there, which extend grows
      const KvPiece& tail = parent_node.pieces.back();
      child.pieces.push_back(KvPiece{tail.chunk, tail.end, tail.end});
      chunk_refcount[static_cast<std::size_t>(tail.chunk)] += 1;
    }
    parent_node.children.push_back(index);
    return index;
  }

  // Appends tokens to a live sequence (chunks already checked): in place when nobody else reads
  // its node, else on a new child that takes over the sequence's end.
  void append_to(Sequence& sequence, std::span<const Token> tokens, std::vector<Slot>& slots) {
    const Node& node = nodes[static_cast<std::size_t>(sequence.node)];
    if (node.sequences_ending != 1 || !node.children.empty()) {
      const std::int32_t target = new_child(sequence.node);
      nodes[static_cast<std::size_t>(sequence.node)].sequences_ending -= 1;
      nodes[static_cast<std::size_t>(target)].sequences_ending += 1;
      sequence.node = target;
    }
    extend(sequence.node, tokens, slots);
    sequence.length += static_cast<std::int64_t>(tokens.size());
    tokens_without_sharing += static_cast<std::int64_t>(tokens.size());
  }
  // The new chunks that append_to would take for `tokens` more tokens on each of `targets` (distinct
  // sequences), in order, without changing anything. Whether a target grows its node in place or
  // a new child does not matter (the child starts in the node's tail); what does is that an earlier
  // target may claim the tail of a chunk a later target's node ends in.
  std::int64_t chunks_for_appends(const std::vector<Sequence*>& targets, std::int64_t tokens) {
    claimed_scratch.resize(chunk_used.size(), -1);  // chunk → positions claimed by earlier targets, -1: none
    std::int64_t needed = 0;
    for (const Sequence* sequence : targets) {
      const Node& node = nodes[static_cast<std::size_t>(sequence->node)];
      std::int32_t tail = 0;
      if (!node.pieces.empty()) {
        const auto chunk = static_cast<std::size_t>(node.pieces.back().chunk);
        tail = tail_when_claimed(node, claimed_scratch[chunk] < 0 ? chunk_used[chunk] : claimed_scratch[chunk]);
        if (tail > 0) claimed_scratch[chunk] = end_position(node) + static_cast<std::int32_t>(std::min<std::int64_t>(tail, tokens));
      }
      needed += chunks_for(tokens, tail);
    }
    for (const Sequence* sequence : targets) {  // back to all -1 for the next call
      const Node& node = nodes[static_cast<std::size_t>(sequence->node)];
      if (!node.pieces.empty()) claimed_scratch[static_cast<std::size_t>(node.pieces.back().chunk)] = -1;
    }
    return needed;
  }

  // Splits node `index` after its first `keep` tokens. The node keeps its id (and the
  // sequences ending at it) as the lower part; the upper part becomes a new parent.
  std::int32_t split(std::int32_t index, std::size_t keep) {
    const std::int32_t upper = allocate_node(parents[static_cast<std::size_t>(index)]);
    Node& lower = nodes[static_cast<std::size_t>(index)];
    Node& top = nodes[static_cast<std::size_t>(upper)];
    top.children = {index};
    top.tokens.assign(lower.tokens.begin(), lower.tokens.begin() + static_cast<std::ptrdiff_t>(keep));

    // keep >= 1 and the lower part keeps at least one token: both parts have pieces.
    const std::int64_t split_position = lower.pieces.front().begin + static_cast<std::int64_t>(keep);
    const auto first_lower_chunk = static_cast<std::size_t>(split_position / chunk_size());
    const auto lower_offset = static_cast<std::int32_t>(split_position % chunk_size());
    const std::size_t top_chunks = lower_offset == 0 ? first_lower_chunk : first_lower_chunk + 1;
    top.pieces.assign(lower.pieces.begin(), lower.pieces.begin() + static_cast<std::ptrdiff_t>(top_chunks));
    if (lower_offset != 0) {  // the chunk split inside is both parts'
      top.pieces.back().end = lower_offset;
      chunk_refcount[static_cast<std::size_t>(lower.pieces[first_lower_chunk].chunk)] += 1;
    }

    lower.tokens.erase(lower.tokens.begin(), lower.tokens.begin() + static_cast<std::ptrdiff_t>(keep));
    lower.pieces.erase(lower.pieces.begin(), lower.pieces.begin() + static_cast<std::ptrdiff_t>(first_lower_chunk));
    lower.pieces.front().begin = lower_offset;

    auto& siblings = nodes[static_cast<std::size_t>(parents[static_cast<std::size_t>(upper)])].children;
    *std::find(siblings.begin(), siblings.end(), index) = upper;
    parents[static_cast<std::size_t>(index)] = upper;
    return upper;
  }

  // Frees a node that no sequence ends at and no child hangs from.
  void free_node(std::int32_t index) {
    Node& node = nodes[static_cast<std::size_t>(index)];
    for (std::size_t i = 0; i < node.pieces.size(); ++i) {
      const KvPiece& piece = node.pieces[i];
      const auto chunk = static_cast<std::size_t>(piece.chunk);
      if (--chunk_refcount[chunk] == 0) {
        chunk_used[chunk] = 0;
        free_chunks.push_back(piece.chunk);
      } else if (i == 0 && piece.begin > 0) {
        // The first chunk stays with the parent: give back the tail this node claimed, if
        // nothing after it was claimed, so that the parent's next child can use it.
        if (chunk_used[chunk] == piece.end) chunk_used[chunk] = piece.begin;
      }
    }
    tokens_stored -= static_cast<std::int64_t>(node.tokens.size());
    auto& siblings = nodes[static_cast<std::size_t>(parents[static_cast<std::size_t>(index)])].children;
    siblings.erase(std::find(siblings.begin(), siblings.end(), index));
    node = Node{};
    parents[static_cast<std::size_t>(index)] = kNoNode;
    free_nodes.push_back(index);
  }

  // Where a new sequence of `tokens` meets the tree.
  struct Match {
    std::int32_t node = kRoot;        // deepest node fully matched
    std::size_t matched = 0;          // tokens matched, including `partial_length`
    std::int32_t partial_child = kNoNode;  // child of `node` matched only in part
    std::size_t partial_length = 0;
  };
  // The longest prefix of `tokens` that the tree holds. Siblings may begin with the same tokens
  // (append gives every decode step fresh slots, so it never reuses a child), and the longest
  // match may run down any of them: the search follows every child whose whole edge matches,
  // so it costs the part of the tree that holds prefixes of `tokens`, each node once. Of equally
  // long matches, one that ends where a node ends wins: it needs no split.
  Match match(std::span<const Token> tokens) const {
    Match best;
    std::vector<std::pair<std::int32_t, std::size_t>> pending{{kRoot, 0}};  // fully matched nodes, tokens through them
    while (!pending.empty()) {
      const auto [node, matched] = pending.back();
      pending.pop_back();
      if (matched > best.matched || (matched == best.matched && best.partial_child != kNoNode)) best = Match{node, matched};
      if (matched == tokens.size()) return best;  // every token, ending where a node ends: nothing is better
      for (std::int32_t child : nodes[static_cast<std::size_t>(node)].children) {
        const auto& edge = nodes[static_cast<std::size_t>(child)].tokens;
        const std::size_t limit = std::min(edge.size(), tokens.size() - matched);
        std::size_t length = 0;
        while (length < limit && edge[length] == tokens[matched + length]) ++length;
        if (length == edge.size()) {
          pending.emplace_back(child, matched + length);
        } else if (matched + length > best.matched) {
          best = Match{node, matched + length, child, length};
        }
      }
    }
    return best;
  }

  // The nodes of the path from the root's child down to `node`: how many, and the nodes themselves.
  std::uint32_t depth(std::int32_t node) const {
    std::uint32_t count = 0;
    for (; node != kRoot; node = parents[static_cast<std::size_t>(node)]) ++count;
    return count;
  }
  void write_path(std::int32_t node, std::span<std::int32_t> path) const {
    for (std::size_t at = path.size(); at > 0; node = parents[static_cast<std::size_t>(node)]) path[--at] = node;
  }

  // The pieces of each of `runs` of `path_nodes` (see ReadGuard::write_pieces).
  std::size_t write_pieces(std::span<const std::int32_t> path_nodes, std::span<const NodeRun> runs, std::span<KvPiece> room,
                           std::span<std::uint32_t> piece_ends) const {
    if (piece_ends.size() < runs.size()) {
      fail(ErrorCode::invalid_argument, "write_pieces: " + std::to_string(piece_ends.size()) + " places for the piece counts of " +
                                            std::to_string(runs.size()) + " runs; give one per run");
    }
    KvPiece* const first = room.data();
    KvPiece* const end = first + room.size();
    KvPiece* out = first;
    const std::span<const Node> tree = nodes;  // not reloaded after every copy of pieces, which might alias it
    for (std::size_t i = 0; i < runs.size(); ++i) {
      KvPiece* const run_first = out;
      for (const std::int32_t node_index : path_nodes.subspan(runs[i].begin, runs[i].end - runs[i].begin)) {
        if (static_cast<std::size_t>(node_index) >= tree.size()) (void)nodes.at(static_cast<std::size_t>(node_index));  // throws its error
        const Node& node = tree[static_cast<std::size_t>(node_index)];
        const std::span<const KvPiece> pieces = node.pieces;
        if (pieces.empty()) continue;  // the root holds no KV
        if (pieces.size() > static_cast<std::size_t>(end - out)) {
          fail(ErrorCode::invalid_argument, "write_pieces: too little room for the pieces; allow a node of t tokens t / chunk_size + 2");
        }
        // The node's first piece joins the run's previous piece when that ends where it begins in the
        // same chunk (the node goes on in its parent's last chunk): it is written over that piece,
        // keeping its begin.
        const bool joins = out != run_first && out[-1].chunk == pieces[0].chunk && out[-1].end == pieces[0].begin;
        KvPiece* const node_first = joins ? out - 1 : out;
        const std::int32_t begin = joins ? node_first->begin : pieces[0].begin;
        copy_pieces(pieces, node_first);
        node_first->begin = begin;
        out = node_first + pieces.size();
      }
      piece_ends[i] = static_cast<std::uint32_t>(out - first);
    }
    return static_cast<std::size_t>(out - first);
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

std::int64_t PrefixCache::ReadGuard::length(SeqId seq) const { return impl_.sequence(seq).length; }

std::size_t PrefixCache::ReadGuard::write_paths(std::span<const SeqId> seqs, std::vector<std::int32_t>& nodes,
                                                std::vector<std::uint32_t>& path_begin, std::vector<std::int64_t>& lengths) const {
  const Impl& s = impl_;
  // Two walks up each path: the first counts its nodes, so that the second writes them in place
  // (no growth check per node, no reversal).
  path_begin.resize(seqs.size() + 1);
  lengths.resize(seqs.size());
  path_begin[0] = 0;
  std::uint32_t end = 0;
  std::size_t live = 0;
  for (; live < seqs.size(); ++live) {
    const Sequence* sequence = s.find_sequence(seqs[live]);
    if (sequence == nullptr) break;
    end += s.depth(sequence->node);
    path_begin[live + 1] = end;
    lengths[live] = sequence->length;
  }
  path_begin.resize(live + 1);
  lengths.resize(live);
  nodes.resize(end);
  for (std::size_t i = 0; i < live; ++i) {
    s.write_path(s.sequences[Impl::index_of(seqs[i])].node, std::span(nodes).subspan(path_begin[i], path_begin[i + 1] - path_begin[i]));  // live: found above
  }
  return live;
}

void PrefixCache::ReadGuard::append_pieces(std::span<const std::int32_t> nodes, std::vector<KvPiece>& pieces) const {
  std::size_t room = 0;
  for (const std::int32_t node : nodes) room += impl_.nodes.at(static_cast<std::size_t>(node)).pieces.size();
  const std::size_t first = pieces.size();
  pieces.resize(first + room);
  const NodeRun all{0, static_cast<std::uint32_t>(nodes.size())};
  std::uint32_t count = 0;
  impl_.write_pieces(nodes, std::span(&all, 1), std::span(pieces).subspan(first), std::span(&count, 1));
  pieces.resize(first + count);
}

std::size_t PrefixCache::ReadGuard::write_pieces(std::span<const std::int32_t> nodes, std::span<const NodeRun> runs, std::span<KvPiece> room,
                                                 std::span<std::uint32_t> piece_ends) const {
  return impl_.write_pieces(nodes, runs, room, piece_ends);
}

std::int64_t PrefixCache::ReadGuard::node_tokens(std::int32_t node_index) const {
  return static_cast<std::int64_t>(impl_.nodes.at(static_cast<std::size_t>(node_index)).tokens.size());
}

const CacheConfig& PrefixCache::config() const { return impl().config; }

AddResult PrefixCache::add(std::span<const Token> tokens) {
  const MutationGuard guard(impl().users, "PrefixCache::add");
  Impl& s = impl();
  if (tokens.empty()) fail(ErrorCode::invalid_argument, "add: the token list is empty; a sequence needs at least one token");
  const Impl::Match m = s.match(tokens);
  const std::size_t rest = tokens.size() - m.matched;
  if (rest > 0) {
    // After a split the new branch cannot use the split chunk's tail: the old branch has it.
    const std::int32_t tail = m.partial_child == kNoNode ? s.claimable_tail(s.nodes[static_cast<std::size_t>(m.node)]) : 0;
    s.require_chunks(s.chunks_for(static_cast<std::int64_t>(rest), tail));
  }

  // Allocate before the first change, so that running out of memory leaves the cache as it was.
  AddResult result;
  result.slots.reserve(rest);
  s.reserve_nodes(2);
  reserve_more(s.sequences, 1);
  std::int32_t end = m.node;
  if (m.partial_child != kNoNode) end = s.split(m.partial_child, m.partial_length);
  result.cached_tokens = static_cast<std::int64_t>(m.matched);
  if (rest > 0) {
    end = s.new_child(end);
    s.extend(end, tokens.subspan(m.matched), result.slots);
  }
  result.seq = s.new_sequence(end, static_cast<std::int64_t>(tokens.size()));
  s.touch();
  return result;
}

std::vector<Slot> PrefixCache::append(SeqId seq, std::span<const Token> tokens) {
  const MutationGuard guard(impl().users, "PrefixCache::append");
  Impl& s = impl();
  Sequence& sequence = s.sequence(seq);
  if (tokens.empty()) fail(ErrorCode::invalid_argument, "append: the token list is empty; append at least one token");
  s.require_chunks(s.chunks_for(static_cast<std::int64_t>(tokens.size()), s.claimable_tail(s.nodes[static_cast<std::size_t>(sequence.node)])));
  std::vector<Slot> slots;
  slots.reserve(tokens.size());
  s.reserve_nodes(1);  // allocate before the first change
  s.append_to(sequence, tokens, slots);
  s.touch();
  return slots;
}

std::vector<Slot> PrefixCache::append_batch(std::span<const SeqId> seqs, std::span<const Token> tokens) {
  const MutationGuard guard(impl().users, "PrefixCache::append_batch");
  Impl& s = impl();
  if (seqs.empty()) fail(ErrorCode::invalid_argument, "append_batch: no sequences; pass at least one");
  if (tokens.empty() || tokens.size() % seqs.size() != 0) {
    fail(ErrorCode::invalid_argument, "append_batch: " + std::to_string(tokens.size()) + " tokens for " + std::to_string(seqs.size()) +
                                          " sequences; pass the same number of tokens (at least one) for every sequence, sequence by sequence");
  }
  const std::size_t each = tokens.size() / seqs.size();
  std::vector<Sequence*> targets;
  targets.reserve(seqs.size());
  s.seen_in_batch.resize(s.sequences.size(), 0);
  const std::uint64_t batch = ++s.batches;
  for (const SeqId seq : seqs) {
    Sequence& sequence = s.sequence(seq);
    std::uint64_t& seen = s.seen_in_batch[static_cast<std::size_t>(&sequence - s.sequences.data())];
    if (seen == batch) fail(ErrorCode::invalid_argument, "append_batch: a sequence appears twice; pass each sequence once (with all its new tokens)");
    seen = batch;
    targets.push_back(&sequence);
  }
  s.require_chunks(s.chunks_for_appends(targets, static_cast<std::int64_t>(each)));
  std::vector<Slot> slots;
  slots.reserve(tokens.size());
  s.reserve_nodes(seqs.size());  // allocate before the first change
  for (std::size_t i = 0; i < targets.size(); ++i) s.append_to(*targets[i], tokens.subspan(i * each, each), slots);
  s.touch();
  return slots;
}

std::vector<SeqId> PrefixCache::fork(SeqId seq, int n) {
  const MutationGuard guard(impl().users, "PrefixCache::fork");
  Impl& s = impl();
  const Sequence parent = s.sequence(seq);
  if (n < 1) fail(ErrorCode::invalid_argument, "fork: n must be at least 1, got " + std::to_string(n));
  std::vector<SeqId> children;
  children.reserve(static_cast<std::size_t>(n));
  reserve_more(s.sequences, static_cast<std::size_t>(n));  // allocate before the first change
  for (int i = 0; i < n; ++i) children.push_back(s.new_sequence(parent.node, parent.length));
  s.touch();
  return children;
}

void PrefixCache::remove(SeqId seq) {
  const MutationGuard guard(impl().users, "PrefixCache::remove");
  Impl& s = impl();
  Sequence& sequence = s.sequence(seq);
  std::int32_t node = sequence.node;
  s.nodes[static_cast<std::size_t>(node)].sequences_ending -= 1;
  s.tokens_without_sharing -= sequence.length;
  s.live_sequences -= 1;
  sequence.live = false;
  sequence.generation += 1;
  // A slot whose generation would wrap is retired, so that no handle is ever issued twice.
  if (sequence.generation != UINT32_MAX) s.free_sequences.push_back(static_cast<std::uint32_t>(seq.value & 0xffffffffu));
  while (node != kRoot) {
    const Node& n = s.nodes[static_cast<std::size_t>(node)];
    if (n.sequences_ending > 0 || !n.children.empty()) break;
    const std::int32_t parent = s.parents[static_cast<std::size_t>(node)];
    s.free_node(node);
    node = parent;
  }
  s.touch();
}

void PrefixCache::write_kv(int layer, DeviceSlots slots, const ConstTensorView& k, const ConstTensorView& v, void* stream) {
  const MutationGuard guard(impl().users, "PrefixCache::write_kv");
  const CacheConfig& c = impl().config;
  if (c.device != Device::cuda) fail(ErrorCode::invalid_argument, "write_kv: slots in device memory need a GPU cache; pass host slots");
  if (layer < 0 || layer >= c.num_layers) {
    fail(ErrorCode::invalid_argument,
         "write_kv: layer " + std::to_string(layer) + " is out of range; the cache has " + std::to_string(c.num_layers) + " layers");
  }
  if (slots.count < 0) fail(ErrorCode::invalid_argument, "write_kv: the slot count is negative");
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
    fail(ErrorCode::invalid_argument,
         "write_kv: layer " + std::to_string(layer) + " is out of range; the cache has " + std::to_string(c.num_layers) + " layers");
  }
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), c.num_kv_heads, c.head_dim};
  // K and V may come from the host or, for a GPU cache, from the device.
  const Device source_device = c.device == Device::cuda ? k.device : Device::cpu;
  expect_tensor(k, "write_kv: k", {DType::f32, DType::f16, DType::bf16}, source_device, shape);
  expect_tensor(v, "write_kv: v", {DType::f32, DType::f16, DType::bf16}, source_device, shape);
  // A slot holds a token of a live sequence exactly when its chunk is in use and its offset is
  // below the chunk's claimed positions. The positions of a chunk are claimed by a chain of nodes,
  // each the parent of the next (only a node's own continuation may claim its tail; another
  // branch starts a new chunk), so only the chain's last node can be freed, and free_node gives
  // its positions back. And every live node lies on a live sequence's path: a node that no
  // sequence ends at and no child hangs from is freed.
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const Slot slot = slots[i];
    auto refuse = [&](const std::string& reason) {
      fail(ErrorCode::invalid_argument, "write_kv: slot " + std::to_string(i) + " (chunk " + std::to_string(slot.chunk) + ", offset " +
                                            std::to_string(slot.offset) + ") " + reason +
                                            "; write only slots that add or append returned, while a sequence holding them is live");
    };
    if (slot.chunk < 0 || slot.chunk >= c.capacity_chunks || slot.offset < 0 || slot.offset >= c.chunk_size) {
      refuse("is outside the pool of " + std::to_string(c.capacity_chunks) + " chunks of " + std::to_string(c.chunk_size) + " positions");
    }
    const auto chunk = static_cast<std::size_t>(slot.chunk);
    if (s.chunk_refcount[chunk] == 0 || slot.offset >= s.chunk_used[chunk]) {
      refuse("holds no token of a live sequence (it was never returned, or every sequence holding it was removed)");
    }
  }
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
  const Impl& s = impl();
  CacheStats stats;
  stats.capacity_chunks = s.config.capacity_chunks;
  stats.chunks_in_use = s.config.capacity_chunks - static_cast<std::int64_t>(s.free_chunks.size());
  stats.tokens_stored = s.tokens_stored;
  stats.tokens_without_sharing = s.tokens_without_sharing;
  stats.sequences = s.live_sequences;
  stats.nodes = static_cast<std::int64_t>(s.nodes.size() - s.free_nodes.size()) - 1;
  return stats;
}

bool PrefixCache::contains(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::contains");
  try {
    impl().sequence(seq);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::int64_t PrefixCache::length(SeqId seq) const { return ReadGuard(*this, "PrefixCache::length").length(seq); }

std::vector<std::int32_t> PrefixCache::path(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::path");
  const std::int32_t end = impl().sequence(seq).node;
  std::vector<std::int32_t> nodes(impl().depth(end));
  impl().write_path(end, nodes);
  return nodes;
}

std::vector<Token> PrefixCache::tokens(SeqId seq) const {
  const ReadGuard guard(*this, "PrefixCache::tokens");
  std::vector<Token> result;
  for (std::int32_t node : path(seq)) {
    const auto& t = impl().nodes[static_cast<std::size_t>(node)].tokens;
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
    fail(ErrorCode::invalid_argument, "refcount: chunk " + std::to_string(chunk) + " is outside the pool of " +
                                          std::to_string(impl().config.capacity_chunks) + " chunks");
  }
  return impl().chunk_refcount[static_cast<std::size_t>(chunk)];
}

std::uint64_t PrefixCache::version() const {
  const ReadGuard guard(*this, "PrefixCache::version");
  return impl().version;
}

void PrefixCache::append_node_pieces(std::int32_t node, std::vector<KvPiece>& pieces) const {
  const ReadGuard reading(*this, "PrefixCache::append_node_pieces");
  const std::vector<Node>& nodes = impl().nodes;
  if (node <= kRoot || static_cast<std::size_t>(node) >= nodes.size() || !nodes[static_cast<std::size_t>(node)].live) {
    throw Error(ErrorCode::invalid_argument, "PrefixCache::append_node_pieces: " + std::to_string(node) +
                                                 " is not the id of a live node; use the ids that path() returns");
  }
  reading.append_pieces(std::span(&node, 1), pieces);  // a node's pieces never join
}

// config() and pool() need no guard: they read only what never changes after construction.
PoolView PrefixCache::pool(int layer) const {
  const Impl& s = impl();
  if (layer < 0 || layer >= s.config.num_layers) {
    fail(ErrorCode::invalid_argument, "pool: layer " + std::to_string(layer) + " is out of range; the cache has " +
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
