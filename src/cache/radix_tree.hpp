// The prefix cache's bookkeeping: a radix tree of token sequences over one pool of fixed-size KV
// chunks. It knows which tokens each node holds and in which chunk positions, which sequences end
// where, and which chunks are free; it holds no KV. The KV pools, the guard against concurrent use
// and the version that plans check are PrefixCache's (prefix_cache.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chunktree/prefix_cache.hpp"

namespace chunktree {

[[noreturn]] void fail_prefix_cache(ErrorCode code, const std::string& message);  // throws "PrefixCache: " + message

class RadixTree {
 public:
  static constexpr std::int32_t kRoot = 0;
  static constexpr std::int32_t kNoNode = -1;

  // A run of tokens stored contiguously in chunk positions, held as the pieces of its chunks in
  // order: the first from the node's first token's position, the last to past its last token's,
  // the others whole. Token i of the node lives in pieces[(first + i) / C].chunk at position
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
    std::uint32_t generation = 1;  // from 1 to kLastGeneration: no handle is ever 0, the value of SeqId{} (an unset handle)
    std::int64_t length = 0;
    bool live = false;
  };

  RadixTree(std::int32_t chunk_size, std::int64_t capacity_chunks);

  // The mutations, as PrefixCache's of the same names. Each checks its arguments and the chunks it
  // needs, and allocates all it will (room for the nodes, slots and handles it adds, the new nodes
  // themselves, room in the lists of the nodes it grows), before its first change: one that throws,
  // for a bad argument, a full pool or a bad_alloc, leaves the tree unchanged.
  AddResult add(std::span<const Token> tokens);
  std::vector<Slot> append(SeqId seq, std::span<const Token> tokens);
  std::vector<Slot> append_batch(std::span<const SeqId> seqs, std::span<const Token> tokens);
  std::vector<SeqId> fork(SeqId seq, int n);
  void remove(SeqId seq);

  // The live sequence of a handle: nullptr, or (sequence) unknown_sequence thrown, when there is none.
  const Sequence* find_sequence(SeqId id) const {
    const std::uint32_t index = index_of(id);
    const auto generation = static_cast<std::uint32_t>((id.value >> 32) & kLastGeneration);
    if (index >= sequences_.size() || !sequences_[index].live || sequences_[index].generation != generation || tag_of(id) != tag_) {
      return nullptr;
    }
    return &sequences_[index];
  }
  const Sequence& sequence(SeqId id) const {
    const Sequence* found = find_sequence(id);
    if (found == nullptr) unknown_sequence(id);
    return *found;
  }
  // The sequence of a handle that find_sequence has found live, without the checks.
  const Sequence& found_sequence(SeqId id) const { return sequences_[index_of(id)]; }

  // A node by id: any id (node), or a live node's other than the root's (live_node, which throws
  // invalid_argument naming `caller` otherwise).
  const Node& node(std::int32_t index) const { return nodes_.at(static_cast<std::size_t>(index)); }
  const Node& live_node(std::int32_t index, const char* caller) const;

  // The nodes of the path from the root's child down to `node`: how many, and the nodes themselves
  // (make_plan walks every row's path twice, reading 4 bytes a node).
  std::uint32_t depth(std::int32_t node) const {
    std::uint32_t count = 0;
    for (; node != kRoot; node = parents_[static_cast<std::size_t>(node)]) ++count;
    return count;
  }
  void write_path(std::int32_t node, std::span<std::int32_t> path) const {
    for (std::size_t at = path.size(); at > 0; node = parents_[static_cast<std::size_t>(node)]) path[--at] = node;
  }

  // The pieces of each of `runs` of `path_nodes` (see PrefixCache::ReadGuard::write_pieces).
  std::size_t write_pieces(std::span<const std::int32_t> path_nodes, std::span<const PrefixCache::ReadGuard::NodeRun> runs,
                           std::span<KvPiece> room, std::span<std::uint32_t> piece_ends) const;

  // Whether the slot holds a token of a live sequence (false for one outside the pool). A slot does
  // exactly when its chunk is in use and its offset is below the chunk's claimed positions: the
  // positions of a chunk are claimed by a chain of nodes, each the parent of the next (only a
  // node's own continuation may claim its tail; another branch starts a new chunk), so only the
  // chain's last node can be freed, and free_node gives its positions back; and every live node
  // lies on a live sequence's path (a node that no sequence ends at and no child hangs from is
  // freed). Inline: write_kv asks it for every slot.
  bool holds_token(Slot slot) const {
    if (slot.chunk < 0 || slot.chunk >= capacity_chunks_ || slot.offset < 0 || slot.offset >= chunk_size_) return false;
    const auto chunk = static_cast<std::size_t>(slot.chunk);
    return chunk_refcount_[chunk] > 0 && slot.offset < chunk_used_[chunk];
  }
  std::int32_t refcount(ChunkId chunk) const { return chunk_refcount_[static_cast<std::size_t>(chunk)]; }
  CacheStats stats() const;

 private:
  using NodeRun = PrefixCache::ReadGuard::NodeRun;

  // Throws unknown_sequence for the handle (out of line: sequence() inlines everywhere).
  [[noreturn]] void unknown_sequence(SeqId id) const;

  // The helpers below are inline, defined in radix_tree.cpp, the one file that calls them: the
  // library is position-independent, and GCC inlines no function there that another shared object
  // might interpose (measured: PrefixCache::append 4 ns a call slower without).

  // ---- handles ----
  // A handle is the cache's tag (bits 48-62), the slot's generation (32-47) and its index (0-31):
  // the tag tells a handle of another cache, which would otherwise name a sequence of this one.
  static constexpr std::uint32_t kLastGeneration = 0xffffu;
  SeqId make_id(std::uint32_t index, std::uint32_t generation) const {
    return SeqId{(static_cast<std::uint64_t>(tag_) << 48) | (static_cast<std::uint64_t>(generation) << 32) | index};
  }
  static std::uint32_t index_of(SeqId id) { return static_cast<std::uint32_t>(id.value & 0xffffffffu); }
  static std::uint32_t tag_of(SeqId id) { return static_cast<std::uint32_t>(id.value >> 48); }
  Sequence& sequence(SeqId id) { return const_cast<Sequence&>(std::as_const(*this).sequence(id)); }
  inline SeqId new_sequence(std::int32_t node, std::int64_t length);

  // ---- chunk geometry ----
  // Position just past the node's last token, inside its last chunk (1..C), or 0 for the root.
  static std::int32_t end_position(const Node& node) { return node.pieces.empty() ? 0 : node.pieces.back().end; }
  inline std::int32_t claimable_tail(const Node& node) const;
  inline std::int32_t tail_when_claimed(const Node& node, std::int32_t claimed) const;
  inline std::int64_t chunks_for(std::int64_t tokens, std::int32_t tail) const;
  inline void require_chunks(std::int64_t needed) const;
  inline ChunkId take_chunk();

  // ---- nodes ----
  inline void extend(std::int32_t node_index, std::span<const Token> tokens, std::vector<Slot>& slots);
  inline void reserve_nodes(std::size_t extra);
  inline void reserve_sequences(std::size_t extra);
  inline Node node_with_room(std::size_t tokens, std::size_t children) const;
  inline void reserve_growth(Node& node, std::size_t tokens) const;
  static inline bool grows_in_place(const Node& end);
  inline std::int32_t allocate_node(std::int32_t parent, Node&& room);
  inline std::int32_t new_child(std::int32_t parent, Node&& room);
  inline void append_to(Sequence& sequence, std::span<const Token> tokens, std::vector<Slot>& slots, Node* child_room);
  inline std::int64_t chunks_for_appends(const std::vector<Sequence*>& targets, std::int64_t tokens);
  inline std::int32_t split(std::int32_t index, std::size_t keep, Node&& room);
  inline void free_node(std::int32_t index);

  // Where a new sequence of `tokens` meets the tree.
  struct Match {
    std::int32_t node = kRoot;             // deepest node fully matched
    std::size_t matched = 0;               // tokens matched, including `partial_length`
    std::int32_t partial_child = kNoNode;  // child of `node` matched only in part
    std::size_t partial_length = 0;
  };
  inline Match match(std::span<const Token> tokens) const;

  std::int32_t chunk_size_;
  std::int64_t capacity_chunks_;
  std::uint32_t tag_;  // this tree's part of its handles: caches made one after another differ

  std::vector<Node> nodes_;
  // parents_[i]: node i's parent (kNoNode for the root and free nodes); kept apart from Node so that
  // walking up a path reads 4 bytes a node.
  std::vector<std::int32_t> parents_;
  std::vector<std::int32_t> free_nodes_;
  std::vector<Sequence> sequences_;
  std::vector<std::uint32_t> free_sequences_;

  std::vector<std::int32_t> chunk_refcount_;  // nodes using the chunk
  std::vector<std::int32_t> chunk_used_;      // positions claimed, from 0
  std::vector<ChunkId> free_chunks_;          // a stack; lowest ids handed out first

  std::int64_t live_sequences_ = 0;
  std::int64_t tokens_without_sharing_ = 0;
  std::int64_t tokens_stored_ = 0;

  // append_batch's scratch, kept between calls so that a decode step allocates nothing (once it has
  // grown): a chunk's positions claimed so far in the batch (-1 between calls), and the call that
  // last saw a sequence.
  std::vector<std::int32_t> claimed_scratch_;
  std::vector<std::uint64_t> seen_in_batch_;
  std::uint64_t batches_ = 0;
  // append_batch's new nodes, made before its first change, in batch order (their room reused).
  std::vector<Node> new_children_;
};

}  // namespace chunktree
