#include "schedule/cost_model.hpp"

#include <algorithm>

#include "kernels/tile_shapes.hpp"

namespace chunktree::cost_model {
namespace {

// The cost model behind the item split, in µs (docs/KERNEL_NOTES.md, experiments 7, 10 and 12): a
// tile spends `start` on its Q and its state, then `step` per 64 KV positions at head dim 128
// (proportional to the head dim); an mma.sync tile takes one of two slots of an SM, a wgmma tile
// the whole SM; the run takes the longer of the work spread over all slots and the longest tile,
// plus a tail; every state is written once and read once by the merge at HBM speed. The wgmma
// tile is compute-bound (fitted on an H100: its tensor rate is the H200's); the mma.sync tile
// streams K and V at the HBM rate shared by two slots per SM (H200: 4.47 TB/s / 264 slots moves a
// 32 KiB step in 1.9 µs). The tail is half a tile for wgmma tiles, and small for mma.sync tiles,
// which speed up when they run alone at the end.
struct TileCost {
  double step;
  double start;
  double tail;
  double slots;  // of the two per SM
};
constexpr TileCost kWgmmaCost{2.0, 2.0, 0.5, 2.0};
constexpr TileCost kMmaSyncCost{1.9, 3.0, 0.1, 1.0};
constexpr double kStateBytesPerMicro = 3.0e6;

// One tile's time: its start, then its steps of 64 positions.
double tile_micros(const TileCost& cost, std::int64_t tokens, int head_dim) {
  return cost.start + static_cast<double>((tokens + 63) / 64) * cost.step * head_dim / 128.0;
}

}  // namespace

double estimated_micros(std::span<const SpanSize> items, std::int64_t split, const SplitShape& shape, int multiprocessors) {
  const auto slots = 2 * static_cast<std::int64_t>(multiprocessors);  // two mma.sync tiles or one wgmma tile per SM
  const std::int64_t group = shape.q_heads / shape.kv_heads;
  double total = 0.0;
  double longest_tile = 0.0;
  double tail = 0.0;
  double state_bytes = 0.0;
  for (const SpanSize& item : items) {
    const std::int64_t query_rows = item.rows * shape.queries * group;
    const bool wgmma = kernels::uses_wgmma(query_rows, shape.head_dim);
    const TileCost& cost = wgmma ? kWgmmaCost : kMmaSyncCost;
    const std::int64_t tile_rows = wgmma ? kernels::kWgmmaTileRows : kernels::kMmaSyncTileRows;
    const std::int64_t parts = split == 0 ? 1 : (item.tokens + split - 1) / split;
    const std::int64_t part_tokens = (item.tokens + parts - 1) / parts;
    const double tile = tile_micros(cost, part_tokens, shape.head_dim);
    const std::int64_t tiles = (query_rows + tile_rows - 1) / tile_rows * shape.kv_heads * parts;
    total += static_cast<double>(tiles) * tile * cost.slots;
    longest_tile = std::max(longest_tile, tile);
    tail = std::max(tail, cost.tail * tile);
    state_bytes += 2.0 * static_cast<double>(item.rows * parts * shape.queries * shape.q_heads * shape.head_dim) * sizeof(float);
  }
  return std::max(total / static_cast<double>(slots), longest_tile) + tail + state_bytes / kStateBytesPerMicro;
}

std::int64_t cheapest_split(std::span<const SpanSize> items, const SplitShape& shape, int multiprocessors) {
  std::int64_t longest = 0;
  for (const SpanSize& item : items) longest = std::max(longest, item.tokens);
  std::int64_t best_split = 0;
  double best = estimated_micros(items, 0, shape, multiprocessors);
  for (std::int64_t split = 64; split < longest; split *= 2) {
    const std::int64_t candidate = std::max(split, shape.min_split);
    const double micros = estimated_micros(items, candidate, shape, multiprocessors);
    if (micros < best) {
      best = micros;
      best_split = candidate;
    }
  }
  return best_split;
}

}  // namespace chunktree::cost_model
