#include "cache/radix_tree.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace chunktree {
namespace {

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

// The tag of the next tree: 1..32767 in turn, so that 32767 caches made one after another give
// handles that no other of them accepts (15 bits: every handle fits an int64, as engines keep ids).
std::uint32_t next_tag() {
  static std::atomic<std::uint64_t> made{0};
  return static_cast<std::uint32_t>(made.fetch_add(1, std::memory_order_relaxed) % 0x7fffu) + 1;
}

}  // namespace

void fail_prefix_cache(ErrorCode code, const std::string& message) { throw Error(code, "PrefixCache: " + message); }

RadixTree::RadixTree(std::int32_t chunk_size, std::int64_t capacity_chunks)
    : chunk_size_(chunk_size), capacity_chunks_(capacity_chunks), tag_(next_tag()) {
  nodes_.emplace_back();
  parents_.push_back(kNoNode);
  nodes_[kRoot].live = true;
  chunk_refcount_.assign(static_cast<std::size_t>(capacity_chunks), 0);
  chunk_used_.assign(static_cast<std::size_t>(capacity_chunks), 0);
  free_chunks_.reserve(static_cast<std::size_t>(capacity_chunks));
  for (std::int64_t c = capacity_chunks - 1; c >= 0; --c) free_chunks_.push_back(static_cast<ChunkId>(c));
}

// ---- the mutations ----

AddResult RadixTree::add(std::span<const Token> tokens) {
  if (tokens.empty()) fail_prefix_cache(ErrorCode::invalid_argument, "add: the token list is empty; a sequence needs at least one token");
  const Match m = match(tokens);
  const std::size_t rest = tokens.size() - m.matched;
  if (rest > 0) {
    // After a split the new branch cannot use the split chunk's tail: the old branch has it.
    const std::int32_t tail = m.partial_child == kNoNode ? claimable_tail(nodes_[static_cast<std::size_t>(m.node)]) : 0;
    require_chunks(chunks_for(static_cast<std::int64_t>(rest), tail));
  }

  // Everything it allocates, before the first change (DESIGN.md, "Errors"): the slots, room for two
  // nodes and the sequence, and the nodes it adds, made off the tree with their lists' room.
  AddResult result;
  result.slots.reserve(rest);
  reserve_nodes(2);
  reserve_sequences(1);
  Node upper;
  Node child;
  if (m.partial_child != kNoNode) upper = node_with_room(m.partial_length, rest > 0 ? 2 : 1);
  if (rest > 0) {
    child = node_with_room(rest, 0);
    if (m.partial_child == kNoNode) reserve_more(nodes_[static_cast<std::size_t>(m.node)].children, 1);
  }
  std::int32_t end = m.node;
  if (m.partial_child != kNoNode) end = split(m.partial_child, m.partial_length, std::move(upper));
  result.cached_tokens = static_cast<std::int64_t>(m.matched);
  if (rest > 0) {
    end = new_child(end, std::move(child));
    extend(end, tokens.subspan(m.matched), result.slots);
  }
  result.seq = new_sequence(end, static_cast<std::int64_t>(tokens.size()));
  return result;
}

std::vector<Slot> RadixTree::append(SeqId seq, std::span<const Token> tokens) {
  Sequence& target = sequence(seq);
  if (tokens.empty()) fail_prefix_cache(ErrorCode::invalid_argument, "append: the token list is empty; append at least one token");
  require_chunks(chunks_for(static_cast<std::int64_t>(tokens.size()), claimable_tail(nodes_[static_cast<std::size_t>(target.node)])));
  std::vector<Slot> slots;
  slots.reserve(tokens.size());
  reserve_nodes(1);
  Node& end = nodes_[static_cast<std::size_t>(target.node)];
  if (grows_in_place(end)) {
    reserve_growth(end, tokens.size());
    append_to(target, tokens, slots, nullptr);
  } else {
    reserve_more(end.children, 1);
    Node child = node_with_room(tokens.size(), 0);
    append_to(target, tokens, slots, &child);
  }
  return slots;
}

std::vector<Slot> RadixTree::append_batch(std::span<const SeqId> seqs, std::span<const Token> tokens) {
  if (seqs.empty()) fail_prefix_cache(ErrorCode::invalid_argument, "append_batch: no sequences; pass at least one");
  if (tokens.empty() || tokens.size() % seqs.size() != 0) {
    fail_prefix_cache(ErrorCode::invalid_argument,
                      "append_batch: " + std::to_string(tokens.size()) + " tokens for " + std::to_string(seqs.size()) +
                          " sequences; pass the same number of tokens (at least one) for every sequence, sequence by sequence");
  }
  const std::size_t each = tokens.size() / seqs.size();
  std::vector<Sequence*> targets;
  targets.reserve(seqs.size());
  seen_in_batch_.resize(sequences_.size(), 0);
  const std::uint64_t batch = ++batches_;
  for (const SeqId seq : seqs) {
    Sequence& target = sequence(seq);
    std::uint64_t& seen = seen_in_batch_[static_cast<std::size_t>(&target - sequences_.data())];
    if (seen == batch) {
      fail_prefix_cache(ErrorCode::invalid_argument, "append_batch: a sequence appears twice; pass each sequence once (with all its new tokens)");
    }
    seen = batch;
    targets.push_back(&target);
  }
  require_chunks(chunks_for_appends(targets, static_cast<std::int64_t>(each)));
  std::vector<Slot> slots;
  slots.reserve(tokens.size());
  reserve_nodes(seqs.size());
  // Room for every target before the first change. Which targets grow in place does not change as
  // the batch is appended: only targets that end at a node add children to it, and one target alone
  // at its node grows it in place.
  new_children_.clear();
  for (const Sequence* target : targets) {
    Node& end = nodes_[static_cast<std::size_t>(target->node)];
    if (grows_in_place(end)) {
      reserve_growth(end, each);
    } else {
      reserve_more(end.children, static_cast<std::size_t>(end.sequences_ending));
      new_children_.push_back(node_with_room(each, 0));
    }
  }
  std::size_t next_child = 0;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const bool in_place = grows_in_place(nodes_[static_cast<std::size_t>(targets[i]->node)]);
    append_to(*targets[i], tokens.subspan(i * each, each), slots, in_place ? nullptr : &new_children_[next_child++]);
  }
  return slots;
}

std::vector<SeqId> RadixTree::fork(SeqId seq, int n) {
  const Sequence parent = sequence(seq);
  // A bound on one call's copies, so that a mistaken count is an error rather than gigabytes
  // reserved (or the process killed for them): 2^24 sequences take ~0.5 GB of host memory.
  constexpr int kMaxForks = 1 << 24;
  if (n < 1 || n > kMaxForks) {
    fail_prefix_cache(ErrorCode::invalid_argument,
                      "fork: n must be from 1 to " + std::to_string(kMaxForks) + " (fork in several calls for more), got " + std::to_string(n));
  }
  std::vector<SeqId> children;
  children.reserve(static_cast<std::size_t>(n));
  reserve_sequences(static_cast<std::size_t>(n));  // allocate before the first change
  for (int i = 0; i < n; ++i) children.push_back(new_sequence(parent.node, parent.length));
  return children;
}

void RadixTree::remove(SeqId seq) {
  Sequence& removed = sequence(seq);
  std::int32_t node = removed.node;
  nodes_[static_cast<std::size_t>(node)].sequences_ending -= 1;
  tokens_without_sharing_ -= removed.length;
  live_sequences_ -= 1;
  removed.live = false;
  removed.generation += 1;
  // A slot whose generation would wrap is retired, so that no handle is ever issued twice.
  if (removed.generation <= kLastGeneration) free_sequences_.push_back(index_of(seq));
  while (node != kRoot) {
    const Node& n = nodes_[static_cast<std::size_t>(node)];
    if (n.sequences_ending > 0 || !n.children.empty()) break;
    const std::int32_t parent = parents_[static_cast<std::size_t>(node)];
    free_node(node);
    node = parent;
  }
}

// ---- reads ----

void RadixTree::unknown_sequence(SeqId id) const {
  if (id.value != 0 && tag_of(id) != tag_) {
    fail_prefix_cache(ErrorCode::unknown_sequence, "unknown sequence handle " + std::to_string(id.value) +
                                                       ": not of this cache (another cache's, or not a handle); use a handle this cache's add or fork returned");
  }
  fail_prefix_cache(ErrorCode::unknown_sequence, "unknown or removed sequence handle " + std::to_string(id.value) +
                                                     "; use a handle returned by add or fork that has not been removed");
}

const RadixTree::Node& RadixTree::live_node(std::int32_t index, const char* caller) const {
  if (index <= kRoot || static_cast<std::size_t>(index) >= nodes_.size() || !nodes_[static_cast<std::size_t>(index)].live) {
    throw Error(ErrorCode::invalid_argument,
                std::string(caller) + ": " + std::to_string(index) + " is not the id of a live node; use the ids that path() returns");
  }
  return nodes_[static_cast<std::size_t>(index)];
}

std::size_t RadixTree::write_pieces(std::span<const std::int32_t> path_nodes, std::span<const NodeRun> runs, std::span<KvPiece> room,
                                    std::span<std::uint32_t> piece_ends) const {
  if (piece_ends.size() < runs.size()) {
    fail_prefix_cache(ErrorCode::invalid_argument, "write_pieces: " + std::to_string(piece_ends.size()) +
                                                       " places for the piece counts of " + std::to_string(runs.size()) +
                                                       " runs; give one per run");
  }
  KvPiece* const first = room.data();
  KvPiece* const end = first + room.size();
  KvPiece* out = first;
  const std::span<const Node> tree = nodes_;  // not reloaded after every copy of pieces, which might alias it
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].begin > runs[i].end || runs[i].end > path_nodes.size()) {
      fail_prefix_cache(ErrorCode::invalid_argument, "write_pieces: run " + std::to_string(i) + " is nodes [" + std::to_string(runs[i].begin) +
                                                         ", " + std::to_string(runs[i].end) + ") of a list of " +
                                                         std::to_string(path_nodes.size()) + "; give begin <= end <= the list's size");
    }
    KvPiece* const run_first = out;
    for (const std::int32_t node_index : path_nodes.subspan(runs[i].begin, runs[i].end - runs[i].begin)) {
      if (node_index <= kRoot || static_cast<std::size_t>(node_index) >= tree.size() || !tree[static_cast<std::size_t>(node_index)].live) {
        (void)live_node(node_index, "PrefixCache::ReadGuard::write_pieces");  // throws its error
      }
      const std::span<const KvPiece> pieces = tree[static_cast<std::size_t>(node_index)].pieces;
      if (pieces.empty()) continue;  // nothing to write (every live node but the root holds KV)
      if (pieces.size() > static_cast<std::size_t>(end - out)) {
        fail_prefix_cache(ErrorCode::invalid_argument,
                          "write_pieces: too little room for the pieces; allow a node of t tokens t / chunk_size + 2");
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

CacheStats RadixTree::stats() const {
  CacheStats stats;
  stats.capacity_chunks = capacity_chunks_;
  stats.chunks_in_use = capacity_chunks_ - static_cast<std::int64_t>(free_chunks_.size());
  stats.tokens_stored = tokens_stored_;
  stats.tokens_without_sharing = tokens_without_sharing_;
  stats.sequences = live_sequences_;
  stats.nodes = static_cast<std::int64_t>(nodes_.size() - free_nodes_.size()) - 1;
  return stats;
}

// ---- handles ----

inline SeqId RadixTree::new_sequence(std::int32_t node, std::int64_t length) {
  std::uint32_t index;
  if (!free_sequences_.empty()) {
    index = free_sequences_.back();
    free_sequences_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(sequences_.size());
    sequences_.emplace_back();
  }
  Sequence& s = sequences_[index];
  s.node = node;
  s.length = length;
  s.live = true;
  nodes_[static_cast<std::size_t>(node)].sequences_ending += 1;
  live_sequences_ += 1;
  tokens_without_sharing_ += length;
  return make_id(index, s.generation);
}

// ---- chunk geometry ----

// Free positions after the node's end in its last chunk that a continuation may claim: only when
// nothing past the node's end has been claimed (the first writer keeps the tail).
inline std::int32_t RadixTree::claimable_tail(const Node& node) const {
  return node.pieces.empty() ? 0 : tail_when_claimed(node, chunk_used_[static_cast<std::size_t>(node.pieces.back().chunk)]);
}

// The same when `claimed` positions of the node's last chunk are taken.
inline std::int32_t RadixTree::tail_when_claimed(const Node& node, std::int32_t claimed) const {
  const std::int32_t end = end_position(node);
  return claimed == end ? chunk_size_ - end : 0;
}

inline std::int64_t RadixTree::chunks_for(std::int64_t tokens, std::int32_t tail) const {
  const std::int64_t rest = std::max<std::int64_t>(0, tokens - tail);
  return (rest + chunk_size_ - 1) / chunk_size_;
}

inline void RadixTree::require_chunks(std::int64_t needed) const {
  if (needed > static_cast<std::int64_t>(free_chunks_.size())) {
    fail_prefix_cache(ErrorCode::capacity_exhausted,
                      "capacity exhausted: this call needs " + std::to_string(needed) + " new chunks but only " +
                          std::to_string(free_chunks_.size()) + " of " + std::to_string(capacity_chunks_) +
                          " are free; remove sequences or create the cache with a larger capacity_chunks");
  }
}

inline ChunkId RadixTree::take_chunk() {
  const ChunkId chunk = free_chunks_.back();
  free_chunks_.pop_back();
  chunk_refcount_[static_cast<std::size_t>(chunk)] = 1;
  chunk_used_[static_cast<std::size_t>(chunk)] = 0;
  return chunk;
}

// ---- nodes ----

// Stores `tokens` after the node's current last token (claiming its tail first, then new chunks)
// and returns their slots. Capacity must have been checked, and room made in the node's lists and
// in `slots` (reserve_growth, node_with_room): it allocates nothing.
inline void RadixTree::extend(std::int32_t node_index, std::span<const Token> tokens, std::vector<Slot>& slots) {
  std::size_t done = 0;
  while (done < tokens.size()) {
    Node& node = nodes_[static_cast<std::size_t>(node_index)];
    std::int32_t tail = claimable_tail(node);
    if (tail == 0) {
      node.pieces.push_back(KvPiece{take_chunk(), 0, 0});
      tail = chunk_size_;
    }
    KvPiece& last = node.pieces.back();
    const ChunkId chunk = last.chunk;
    const std::int32_t position = chunk_used_[static_cast<std::size_t>(chunk)];
    const auto count = static_cast<std::int32_t>(std::min<std::size_t>(static_cast<std::size_t>(tail), tokens.size() - done));
    for (std::int32_t i = 0; i < count; ++i) slots.push_back(Slot{chunk, position + i});
    node.tokens.insert(node.tokens.end(), tokens.begin() + static_cast<std::ptrdiff_t>(done),
                       tokens.begin() + static_cast<std::ptrdiff_t>(done) + count);
    chunk_used_[static_cast<std::size_t>(chunk)] = position + count;
    last.end = position + count;
    done += static_cast<std::size_t>(count);
  }
  tokens_stored_ += static_cast<std::int64_t>(tokens.size());
}

// Room for `extra` more nodes (see reserve_more), and for every node in the free list, so that
// remove, which frees nodes, never allocates.
inline void RadixTree::reserve_nodes(std::size_t extra) {
  reserve_more(nodes_, extra);
  reserve_more(parents_, extra);
  free_nodes_.reserve(nodes_.capacity());
}

// Room for `extra` more sequences, and for every slot in the free list (remove never allocates).
inline void RadixTree::reserve_sequences(std::size_t extra) {
  reserve_more(sequences_, extra);
  free_sequences_.reserve(sequences_.capacity());
}

// A node off the tree with room for `tokens` tokens, the pieces they may take (a partly claimed
// chunk's tail first) and `children` children: a mutation makes the nodes it adds before its first
// change and moves them in, so that what allocates comes before anything changes.
inline RadixTree::Node RadixTree::node_with_room(std::size_t tokens, std::size_t children) const {
  Node node;
  node.tokens.reserve(tokens);
  node.pieces.reserve(tokens / static_cast<std::size_t>(chunk_size_) + 2);
  node.children.reserve(children);
  return node;
}

// Room in a node's lists for `tokens` more tokens and the pieces they may take.
inline void RadixTree::reserve_growth(Node& node, std::size_t tokens) const {
  reserve_more(node.tokens, tokens);
  reserve_more(node.pieces, tokens / static_cast<std::size_t>(chunk_size_) + 1);
}

// Whether a sequence that ends at this node grows it in place when appended to: when nobody else
// reads it. Else a new child takes over the sequence's end (append_to).
inline bool RadixTree::grows_in_place(const Node& end) { return end.sequences_ending == 1 && end.children.empty(); }

// `room` made a live node of the tree (nodes reserved: it allocates nothing); may reallocate
// `nodes_`, so take references only afterwards.
inline std::int32_t RadixTree::allocate_node(std::int32_t parent, Node&& room) {
  std::int32_t index;
  if (!free_nodes_.empty()) {
    index = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    index = static_cast<std::int32_t>(nodes_.size());
    nodes_.emplace_back();
    parents_.emplace_back();
  }
  Node& fresh = nodes_[static_cast<std::size_t>(index)];
  fresh = std::move(room);
  fresh.sequences_ending = 0;
  fresh.live = true;
  parents_[static_cast<std::size_t>(index)] = parent;
  return index;
}

// A new, empty child of `parent` (`room` made it, and a place among the parent's children) that
// will continue in the parent's claimable tail, if any.
inline std::int32_t RadixTree::new_child(std::int32_t parent, Node&& room) {
  const std::int32_t index = allocate_node(parent, std::move(room));
  Node& child = nodes_[static_cast<std::size_t>(index)];
  Node& parent_node = nodes_[static_cast<std::size_t>(parent)];
  if (claimable_tail(parent_node) > 0) {  // the child starts as an empty piece there, which extend grows
    const KvPiece& tail = parent_node.pieces.back();
    child.pieces.push_back(KvPiece{tail.chunk, tail.end, tail.end});
    chunk_refcount_[static_cast<std::size_t>(tail.chunk)] += 1;
  }
  parent_node.children.push_back(index);
  return index;
}

// Appends tokens to a live sequence (chunks already checked, room made): in place when it grows in
// place (`child_room` null), else on a node made of `child_room` (node_with_room), hung under the
// node (room made among its children), which takes over the sequence's end.
inline void RadixTree::append_to(Sequence& target, std::span<const Token> tokens, std::vector<Slot>& slots, Node* child_room) {
  if (child_room != nullptr) {
    const std::int32_t child = new_child(target.node, std::move(*child_room));
    nodes_[static_cast<std::size_t>(target.node)].sequences_ending -= 1;
    nodes_[static_cast<std::size_t>(child)].sequences_ending += 1;
    target.node = child;
  }
  extend(target.node, tokens, slots);
  target.length += static_cast<std::int64_t>(tokens.size());
  tokens_without_sharing_ += static_cast<std::int64_t>(tokens.size());
}

// The new chunks that append_to would take for `tokens` more tokens on each of `targets` (distinct
// sequences), in order, without changing anything. Whether a target grows its node in place or a
// new child does not matter (the child starts in the node's tail); what does is that an earlier
// target may claim the tail of a chunk a later target's node ends in.
inline std::int64_t RadixTree::chunks_for_appends(const std::vector<Sequence*>& targets, std::int64_t tokens) {
  claimed_scratch_.resize(chunk_used_.size(), -1);  // chunk → positions claimed by earlier targets, -1: none
  std::int64_t needed = 0;
  for (const Sequence* target : targets) {
    const Node& end = nodes_[static_cast<std::size_t>(target->node)];
    std::int32_t tail = 0;
    if (!end.pieces.empty()) {
      const auto chunk = static_cast<std::size_t>(end.pieces.back().chunk);
      tail = tail_when_claimed(end, claimed_scratch_[chunk] < 0 ? chunk_used_[chunk] : claimed_scratch_[chunk]);
      if (tail > 0) claimed_scratch_[chunk] = end_position(end) + static_cast<std::int32_t>(std::min<std::int64_t>(tail, tokens));
    }
    needed += chunks_for(tokens, tail);
  }
  for (const Sequence* target : targets) {  // back to all -1 for the next call
    const Node& end = nodes_[static_cast<std::size_t>(target->node)];
    if (!end.pieces.empty()) claimed_scratch_[static_cast<std::size_t>(end.pieces.back().chunk)] = -1;
  }
  return needed;
}

// Splits node `index` after its first `keep` tokens. The node keeps its id (and the sequences
// ending at it) as the lower part; the upper part, made of `room` (node_with_room(keep, 1 or 2):
// its lists take what they get without allocating), becomes a new parent.
inline std::int32_t RadixTree::split(std::int32_t index, std::size_t keep, Node&& room) {
  const std::int32_t upper = allocate_node(parents_[static_cast<std::size_t>(index)], std::move(room));
  Node& lower = nodes_[static_cast<std::size_t>(index)];
  Node& top = nodes_[static_cast<std::size_t>(upper)];
  top.children.push_back(index);
  top.tokens.assign(lower.tokens.begin(), lower.tokens.begin() + static_cast<std::ptrdiff_t>(keep));

  // keep >= 1 and the lower part keeps at least one token: both parts have pieces.
  const std::int64_t split_position = lower.pieces.front().begin + static_cast<std::int64_t>(keep);
  const auto first_lower_chunk = static_cast<std::size_t>(split_position / chunk_size_);
  const auto lower_offset = static_cast<std::int32_t>(split_position % chunk_size_);
  const std::size_t top_chunks = lower_offset == 0 ? first_lower_chunk : first_lower_chunk + 1;
  top.pieces.assign(lower.pieces.begin(), lower.pieces.begin() + static_cast<std::ptrdiff_t>(top_chunks));
  if (lower_offset != 0) {  // the chunk split inside is both parts'
    top.pieces.back().end = lower_offset;
    chunk_refcount_[static_cast<std::size_t>(lower.pieces[first_lower_chunk].chunk)] += 1;
  }

  lower.tokens.erase(lower.tokens.begin(), lower.tokens.begin() + static_cast<std::ptrdiff_t>(keep));
  lower.pieces.erase(lower.pieces.begin(), lower.pieces.begin() + static_cast<std::ptrdiff_t>(first_lower_chunk));
  lower.pieces.front().begin = lower_offset;

  auto& siblings = nodes_[static_cast<std::size_t>(parents_[static_cast<std::size_t>(upper)])].children;
  *std::find(siblings.begin(), siblings.end(), index) = upper;
  parents_[static_cast<std::size_t>(index)] = upper;
  return upper;
}

// Frees a node that no sequence ends at and no child hangs from.
inline void RadixTree::free_node(std::int32_t index) {
  Node& freed = nodes_[static_cast<std::size_t>(index)];
  for (std::size_t i = 0; i < freed.pieces.size(); ++i) {
    const KvPiece& piece = freed.pieces[i];
    const auto chunk = static_cast<std::size_t>(piece.chunk);
    if (--chunk_refcount_[chunk] == 0) {
      chunk_used_[chunk] = 0;
      free_chunks_.push_back(piece.chunk);
    } else if (i == 0 && piece.begin > 0) {
      // The first chunk stays with the parent: give back the tail this node claimed, if nothing
      // after it was claimed, so that the parent's next child can use it.
      if (chunk_used_[chunk] == piece.end) chunk_used_[chunk] = piece.begin;
    }
  }
  tokens_stored_ -= static_cast<std::int64_t>(freed.tokens.size());
  auto& siblings = nodes_[static_cast<std::size_t>(parents_[static_cast<std::size_t>(index)])].children;
  siblings.erase(std::find(siblings.begin(), siblings.end(), index));
  freed = Node{};
  parents_[static_cast<std::size_t>(index)] = kNoNode;
  free_nodes_.push_back(index);
}

// The longest prefix of `tokens` that the tree holds. Siblings may begin with the same tokens
// (append gives every decode step fresh slots, so it never reuses a child), and the longest match
// may run down any of them: the search follows every child whose whole edge matches, so it costs
// the part of the tree that holds prefixes of `tokens`, each node once. Of equally long matches,
// one that ends where a node ends wins: it needs no split.
inline RadixTree::Match RadixTree::match(std::span<const Token> tokens) const {
  Match best;
  std::vector<std::pair<std::int32_t, std::size_t>> pending{{kRoot, 0}};  // fully matched nodes, tokens through them
  while (!pending.empty()) {
    const auto [at, matched] = pending.back();
    pending.pop_back();
    if (matched > best.matched || (matched == best.matched && best.partial_child != kNoNode)) best = Match{at, matched};
    if (matched == tokens.size()) return best;  // every token, ending where a node ends: nothing is better
    for (std::int32_t child : nodes_[static_cast<std::size_t>(at)].children) {
      const auto& edge = nodes_[static_cast<std::size_t>(child)].tokens;
      const std::size_t limit = std::min(edge.size(), tokens.size() - matched);
      std::size_t length = 0;
      while (length < limit && edge[length] == tokens[matched + length]) ++length;
      if (length == edge.size()) {
        pending.emplace_back(child, matched + length);
      } else if (matched + length > best.matched) {
        best = Match{at, matched + length, child, length};
      }
    }
  }
  return best;
}

}  // namespace chunktree
