// Everything observable about a prefix cache's tree for a set of sequences, to prove that a call
// that failed changed nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "chunktree/prefix_cache.hpp"

namespace chunktree::testing {

struct CacheSnapshot {
  CacheStats stats;
  std::uint64_t version = 0;
  std::vector<std::vector<Token>> tokens;
  std::vector<std::vector<Slot>> slots;
  std::vector<std::int32_t> refcounts;

  CacheSnapshot(const PrefixCache& cache, const std::vector<SeqId>& seqs) : stats(cache.stats()), version(cache.version()) {
    for (SeqId seq : seqs) {
      tokens.push_back(cache.tokens(seq));
      slots.push_back(cache.slots(seq));
    }
    for (ChunkId c = 0; c < cache.config().capacity_chunks; ++c) refcounts.push_back(cache.refcount(c));
  }
  bool operator==(const CacheSnapshot& other) const {
    return stats.chunks_in_use == other.stats.chunks_in_use && stats.tokens_stored == other.stats.tokens_stored &&
           stats.tokens_without_sharing == other.stats.tokens_without_sharing && stats.sequences == other.stats.sequences &&
           stats.nodes == other.stats.nodes && version == other.version && tokens == other.tokens && slots == other.slots &&
           refcounts == other.refcounts;
  }
};

}  // namespace chunktree::testing
