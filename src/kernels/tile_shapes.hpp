// The two partial-state kernels' tile shapes, in one place: the kernels, the device workspace that
// cuts items into tiles, and the cost model that chooses the item split all read them. Plain C++,
// so that host code and its CPU tests include it without CUDA.
#pragma once

#include <cstdint>

namespace chunktree::kernels {

// The wgmma kernel takes the tiles of items with more query rows than this (per kv head) and a
// head dim it is built for; the mma.sync kernel takes the rest.
constexpr int kMmaSyncMaxRows = 64;
// Query rows per tile of each kernel (the mma.sync tile holds the widest item it takes).
constexpr int kMmaSyncTileRows = kMmaSyncMaxRows;
constexpr int kWgmmaTileRows = 128;
constexpr bool wgmma_head_dim(int head_dim) { return head_dim == 64 || head_dim == 128; }
// Whether an item with this many query rows per kv head runs on wgmma tiles.
constexpr bool uses_wgmma(std::int64_t query_rows, int head_dim) { return query_rows > kMmaSyncMaxRows && wgmma_head_dim(head_dim); }

}  // namespace chunktree::kernels
