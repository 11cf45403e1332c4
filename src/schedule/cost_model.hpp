// The CUDA backend's cost model: how long the two partial-state kernels take on a plan's spans,
// and the item split it makes cheapest (cuda::plan_options). Plain C++ (no CUDA), so that its
// choices are tested on the CPU.
#pragma once

#include <cstdint>
#include <span>

#include "chunktree/plan.hpp"

namespace chunktree::cost_model {

// A card's peak HBM rate in bytes a µs: twice the memory clock (MHz) times the bus width (bits).
constexpr double peak_memory_bytes_per_micro(double memory_clock_mhz, double bus_bits) { return 2.0 * memory_clock_mhz * bus_bits / 8.0; }
// That of the card the prices below were fitted on, the H200's (3201 MHz, 6144 bits). In wgmma_sms's
// partition a card of slower HBM streams the mma.sync tiles' shared steps slower by the ratio, and
// slows the wgmma tiles that run beside them (docs/KERNEL_NOTES.md, experiment 106); the H200's own
// contention is inside its prices.
inline constexpr double kFitMemoryBytesPerMicro = peak_memory_bytes_per_micro(3201.0, 6144.0);

struct SplitShape {
  int q_heads;
  int kv_heads;
  int head_dim;
  int queries;
  std::int64_t min_split;  // items are cut at multiples of this (a chunk), or only at kMaxItemTokens
  // A kv head's rows are strided by the other heads' (NHD pages of several kv heads): a tile alone
  // on its SM then streams no faster than a slot's share (session 31's ncu: b64_g16_8k's 128 whole
  // tiles, 172 µs on NHD pages against 133 on the cache's head-major chunks; experiment 68).
  bool strided_kv_heads = false;
};

// Estimated µs of the kernels on `spans` cut into items of at most item_limit(split) tokens
// (0: whole up to kMaxItemTokens), on a GPU of `multiprocessors` SMs. A span is priced as that
// many equal parts; the plans cut greedily (full items, then the rest), so where a cut leaves a
// short rest the longest tile is priced shorter than it runs. Pricing the greedy cut instead was
// measured worse (session 36, H100: five of the six plans it changed ran 2-27 % slower).
double estimated_micros(std::span<const SpanSize> spans, std::int64_t split, const SplitShape& shape, int multiprocessors);

// Whether a persistent mma.sync grid of `ctas` CTAs, CTA i taking tiles i, i + ctas, ... of these
// (each tile's KV positions, of all its kv heads, in launch order), ends about when the work spread
// evenly over them would: its busiest CTA's tiles cost at most kUnevenRoundRobin times the mean. Where not, a
// grid of one CTA per tile ends sooner, the hardware giving each next tile to the first CTA slot that
// frees (docs/KERNEL_NOTES.md, experiments 64 and 65).
bool round_robin_is_even(std::span<const std::int64_t> tile_positions, int head_dim, std::int64_t ctas);

// Whether the CTAs of a replayed persistent mma.sync grid (`ctas_per_sm` on each of `multiprocessors`
// SMs) claim their first tiles one per SM (experiment 67) instead of taking tile blockIdx.x, for
// these live tiles (each one's KV positions, in launch order). The hardware gives such a grid's
// first CTAs an SM each only up to about half the SMs (experiment 66's probe: at 264 CTAs, the first
// 64 on 64 SMs, the first 128 on 120, the first 200 on all 132), so a claim can matter only where
// more tiles than that and at most one per SM are live (more share SMs either way: experiment 67's
// 256 tiles of b64_g8_4k took 1.5 % longer claimed), and pays only where the longest tile that may
// share an SM would lose to sharing at least twice what the claim costs.
bool claims_first_tiles(std::span<const std::int64_t> tile_positions, int head_dim, int multiprocessors, int ctas_per_sm);

// Whether an eager call's mma.sync tiles (each one's KV positions, of all its kv heads), beside
// `wgmma_tiles` wgmma tiles, run on a persistent grid whose CTAs claim their tiles (experiments 96
// and 100) instead of one CTA per tile (experiment 12d): where any tile streams more than one stage,
// there are at least kClaimedTilesPerSlot tiles for each of the GPU's slots, or the wgmma CTAs leave
// at least half the SMs to the mma.sync grid from the start. A claimed grid saves each tile's CTA
// start, but a CTA holds up to two one-stage tiles past the one its consumers work on; where only the
// few CTAs on the SMs the wgmma CTAs leave run through the wgmma phase, they still hold them as the
// queue runs dry, while the CTAs placed as the wgmma CTAs end find none (docs/KERNEL_NOTES.md,
// experiments 98, 100 and 105: spec-decode b64 s8, 128 wgmma tiles, against hydragen b512_p1k_s64, 64).
bool claims_later_tiles(std::span<const std::int64_t> tile_positions, std::int64_t wgmma_tiles, int multiprocessors, int ctas_per_sm);

// How many SMs the wgmma tiles get where a plan has tiles of both kinds (each tile as its KV
// positions; an mma.sync tile's, and its query rows, of all its kv heads: one row count a tile), so
// that the mma.sync tiles stream on the other SMs beside them instead of after them
// (docs/KERNEL_NOTES.md, experiments 95 and 99); 0 where no partition is priced kPartitionMustSave cheaper than the two phases one after the other, as both kernels run
// without one (the wgmma CTAs, launched first, take every SM). `memory_bytes_per_micro` is the card's
// peak HBM (0: the fit's card's): on slower HBM the mma.sync tiles stream slower and slow the wgmma
// tiles beside them, and a partition giving the wgmma tiles fewer rounds is preferred where priced
// within kFewerRoundsWithin of the cheapest (experiment 106).
int wgmma_sms(std::span<const std::int64_t> wgmma_tile_positions, std::span<const std::int64_t> mma_sync_tile_positions,
              std::span<const std::int32_t> mma_sync_tile_rows, int head_dim, int multiprocessors, int mma_sync_ctas_per_sm,
              double memory_bytes_per_micro);

// Whole spans (0; cut only at kMaxItemTokens) or the cheapest power of two from 64 tokens (one stage
// of the mma.sync tile; at least min_split) below the longest span; beside private spans of at most
// one mma.sync stage, wide spans' plans also try the longest span in 3..16 even parts (experiment 73).
std::int64_t cheapest_split(std::span<const SpanSize> spans, const SplitShape& shape, int multiprocessors);

}  // namespace chunktree::cost_model
