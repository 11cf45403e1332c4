// The two partial-state kernels' tile shapes, in one place: the kernels, the device workspace that
// cuts items into tiles, and the cost model that chooses the item split all read them. Plain C++,
// so that host code and its CPU tests include it without CUDA.
#pragma once

#include <algorithm>
#include <cstdint>

namespace chunktree::kernels {

// The wgmma kernel takes the tiles of items with more query rows than this (per kv head) and a
// head dim it is built for; the mma.sync kernel takes the rest.
constexpr int kMmaSyncMaxRows = 64;
// Query rows per tile of each kernel (the mma.sync tile holds the widest item it takes).
constexpr int kMmaSyncTileRows = kMmaSyncMaxRows;
constexpr int kWgmmaTileRows = 128;
// KV positions per stage of a wgmma tile (an item cut elsewhere ends in a partly empty stage).
constexpr int kWgmmaStageTokens = 128;
constexpr bool wgmma_head_dim(int head_dim) { return head_dim == 64 || head_dim == 128; }
// Whether an item with this many query rows per kv head runs on wgmma tiles.
constexpr bool uses_wgmma(std::int64_t query_rows, int head_dim) { return query_rows > kMmaSyncMaxRows && wgmma_head_dim(head_dim); }

// An mma.sync tile of a short item with few query rows per kv head (a private span's decode or
// draft tokens) streams one or a few stages and spends several times that on its fixed start and
// end (docs/KERNEL_NOTES.md, experiment 47). Such a tile may carry up to four kv heads instead, one
// per consumer warp, each stage holding kMmaSyncPackedTokens positions of each head (the same bytes
// as a stage of one head): a quarter of the fixed costs, four times the stages. That pays only where
// the tiles queue for the SMs (more than one wave of CTAs, two per SM; in one wave every tile
// starts at once), and then
// - for items of one stage (at most 64 tokens), whose fixed costs dwarf their stage even where a
//   persistent grid overlaps a tile's start with the last one's stream, or
// - beside wgmma tiles, where each mma.sync tile is a CTA of its own that pays its fixed costs
//   unhidden, as long as the packed tiles still queue (experiment 47: 128 packed tiles of 32
//   stages beside 64 wgmma tiles lengthened the call by 12 %).
constexpr int kMmaSyncPackedMaxRows = 16;
constexpr int kMmaSyncPackedHeads = 4;
constexpr int kMmaSyncPackedTokens = 16;
constexpr std::int64_t kMmaSyncPackedMaxTokens = 512;
constexpr std::int64_t kMmaSyncOneStageTokens = 64;

// CTAs of the mma.sync kernel that fit on an SM at once (shared memory holds one at d = 256).
constexpr int mma_sync_ctas_per_sm(int head_dim) { return head_dim == 256 ? 1 : 2; }

// The mma.sync tiles of one kv head of an item with this many query rows per kv head (unpacked).
constexpr std::int64_t mma_sync_row_tiles(std::int64_t query_rows) { return (query_rows + kMmaSyncTileRows - 1) / kMmaSyncTileRows; }

// What decides packing beyond the item: the work's mma.sync tiles, were none packed, whether it
// has wgmma tiles, and the GPU's SMs.
struct PackingContext {
  std::int64_t one_head_tiles;
  bool beside_wgmma;
  int multiprocessors;
  // Counts `count` items of this many query rows per kv head, on wgmma tiles or not.
  constexpr void add(std::int64_t query_rows, bool wgmma, int kv_heads, std::int64_t count) {
    beside_wgmma = beside_wgmma || wgmma;
    if (!wgmma) one_head_tiles += count * mma_sync_row_tiles(query_rows) * kv_heads;
  }
};

// How many kv heads an mma.sync tile of an item with this many query rows (per kv head) and tokens carries.
constexpr int mma_sync_heads_per_tile(std::int64_t query_rows, std::int64_t tokens, int kv_heads, const PackingContext& context) {
  const std::int64_t slots = 2 * std::int64_t{context.multiprocessors};
  const bool tiles_queue = context.one_head_tiles > slots;
  const bool packed_tiles_queue = context.one_head_tiles > kMmaSyncPackedHeads * slots;
  const bool pays = tiles_queue && (tokens <= kMmaSyncOneStageTokens || (context.beside_wgmma && packed_tiles_queue));
  return pays && query_rows <= kMmaSyncPackedMaxRows && tokens <= kMmaSyncPackedMaxTokens ? std::min(kv_heads, kMmaSyncPackedHeads) : 1;
}

}  // namespace chunktree::kernels
