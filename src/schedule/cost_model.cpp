#include "schedule/cost_model.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/tile_shapes.hpp"

namespace chunktree::cost_model {
namespace {

// The cost model behind the item split, in µs (docs/KERNEL_NOTES.md, experiments 7, 10, 12, 39, 42,
// 60 and 62): a tile spends `start` on its Q and its state, then `step` per 64 KV positions at head
// dim 128 (proportional to the head dim); an mma.sync tile takes one of two slots of an SM, a wgmma
// tile the whole SM; every state is written once and read once by the merge at HBM speed. The
// mma.sync tile streams K and V at the HBM rate shared by two slots per SM (H200: 4.47 TB/s / 264
// slots moves a 32 KiB step in 1.9 µs); the mma.sync tiles take the longer of their work spread
// over all slots (the wgmma tiles' work included, where both run) and the longest tile streaming
// alone (kMmaSyncLoneCost), plus a small tail where they queue for the slots (their last wave ends
// unevenly). The wgmma tile is compute-bound: its start and step were fitted on the H200 to an
// item-split sweep (experiment 39: 2.3 µs a tile, 0.85 µs a step); its tiles are dealt onto the SMs
// (below), and the call ends no sooner than the last SM's wgmma tiles, in mixed plans too
// (experiment 42: that beat half a wgmma tile of tail on 20 of 22 mixed rows).
struct TileCost {
  double step;
  double start;
  double slots;  // of the two per SM
};
constexpr TileCost kWgmmaCost{0.85, 2.3, 2.0};
constexpr TileCost kMmaSyncCost{1.9, 3.0, 1.0};
// The longest mma.sync tile, as the lower bound of the call: a tile that need not share its SM
// streams a step faster than the 1.9 of a slot among 264 streaming ones. 0.85 is fitted, not a rate
// measured at every tile count: short fully shared tiles streamed a step in 0.82 (32 tiles), 0.95
// (64) and 1.3 µs (128 running; experiment 60), and the fit makes the model pick 128 of them.
constexpr TileCost kMmaSyncLoneCost{0.85, kMmaSyncCost.start, kMmaSyncCost.slots};
constexpr double kMmaSyncTail = 0.1;  // of the longest tile
constexpr double kStateBytesPerMicro = 3.0e6;
// The most parts of the longest span that the split search cuts it into evenly (beyond them, the
// powers of two only): at most 14 more estimates a plan, ~1.7 µs on b64_p4k (KERNEL_NOTES 73).
constexpr std::int64_t kMostEvenParts = 16;
// Such a split replaces the best power of two only where the model prices it this much cheaper:
// the plans of the powers of two are the measured ones (a closer call is within the model's error).
constexpr double kEvenPartsMustSave = 0.01;

// How many times slower than the fit's card this card streams from HBM: 1 on a card within
// kSameHbm of it or faster (a faster card keeps the fit's prices, which it was not measured to beat)
// and where the driver reports no memory clock.
constexpr double kSameHbm = 0.01;
double hbm_slowdown(double memory_bytes_per_micro) {
  if (memory_bytes_per_micro <= 0.0) return 1.0;
  const double ratio = kFitMemoryBytesPerMicro / memory_bytes_per_micro;
  return ratio > 1.0 + kSameHbm ? ratio : 1.0;
}

// wgmma tiles beside a stream of mma.sync tiles on slower HBM than the fit's run slower than their
// fitted price, which holds the fit card's own contention: by this much per unit of slowdown past 1,
// for the part of their time the stream runs beside them (session 61's k sweep, H100, ×1.47: wgmma
// rounds took 1.20-1.26× their price beside spec-decode's MHA s264 stream, 1.07-1.18× beside
// hydragen's s512 one; experiment 106).
constexpr double kWgmmaBesideStream = 0.535;

// The wgmma tiles' `wgmma` µs with mma.sync tiles streaming `mma_sync` µs beside them.
double wgmma_beside_stream(double wgmma, double mma_sync, double slowdown) {
  if (wgmma <= 0.0 || slowdown <= 1.0) return wgmma;
  return wgmma * (1.0 + kWgmmaBesideStream * (slowdown - 1.0) * std::min(1.0, mma_sync / wgmma));
}

// A tile's steps: its KV positions (of all its kv heads) in steps of 64.
std::int64_t steps_of(std::int64_t positions) { return (positions + 63) / 64; }

// One tile's time: its start, then its steps of 64 positions.
double tile_micros(const TileCost& cost, std::int64_t steps, int head_dim) {
  return cost.start + static_cast<double>(steps) * cost.step * head_dim / 128.0;
}

// `count` equal spans, next to each other in the caller's list (a decode batch's forks often have
// private spans of one length), with what their rows decide once for every split: the tile kind,
// the query rows per kv head and their row tiles.
struct SpanRun {
  SpanSize size;
  std::int64_t count = 0;
  bool wgmma = false;
  std::int64_t query_rows = 0;
  std::int64_t row_tiles = 0;  // of its kind's tile rows
};

std::vector<SpanRun> runs_of(std::span<const SpanSize> spans, const SplitShape& shape) {
  std::vector<SpanRun> runs;
  for (std::size_t first = 0, end = 0; first < spans.size(); first = end) {
    const SpanSize span = spans[first];
    for (end = first + 1; end < spans.size() && spans[end].rows == span.rows && spans[end].tokens == span.tokens;) ++end;
    const std::int64_t query_rows = span.rows * shape.queries * (shape.q_heads / shape.kv_heads);
    const bool wgmma = kernels::uses_wgmma(query_rows, shape.head_dim);
    const std::int64_t tile_rows = wgmma ? kernels::kWgmmaTileRows : kernels::kMmaSyncTileRows;
    runs.push_back(SpanRun{span, static_cast<std::int64_t>(end - first), wgmma, query_rows, (query_rows + tile_rows - 1) / tile_rows});
  }
  return runs;
}

// Tile counts by their steps as (steps, tiles) pairs: gathered in any order (a pair a run of equal
// tiles), then merged by by_steps_longest_first into one pair a length, longest first, the order in
// which dealt_wgmma_micros deals them. A vector, not a map: the split search builds one for every
// split it prices, and a node per length was an allocation each.
using TilesBySteps = std::vector<std::pair<std::int64_t, std::int64_t>>;

void by_steps_longest_first(TilesBySteps& tiles) {
  std::sort(tiles.begin(), tiles.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::size_t lengths = 0;
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    if (lengths > 0 && tiles[lengths - 1].first == tiles[i].first) {
      tiles[lengths - 1].second += tiles[i].second;
    } else {
      tiles[lengths++] = tiles[i];
    }
  }
  tiles.resize(lengths);
}

// The tiles and states of spans cut at one split, counted in whole numbers per tile kind
// (mma.sync, wgmma), so that a run of equal spans costs one step and the sum is exact.
struct SplitWork {
  std::int64_t tiles[2] = {0, 0};
  std::int64_t tile_steps[2] = {0, 0};        // the tiles' steps of 64 positions, summed
  std::int64_t longest_steps[2] = {-1, -1};   // of one tile; -1: no span of that kind
  std::int64_t state_rows = 0;                // rows times parts, summed
  TilesBySteps wgmma_tiles_by_steps;  // longest first
};

// A tile of packed kv heads (kernels/tile_shapes.hpp) counts a step per 64 positions of all its
// heads. `parts` is scratch (each run's parts at this split: found once for both passes). The search
// estimates every split over every run, and a serving batch's private spans are mostly of distinct
// lengths, so the divisions that do not depend on the split are done once, in runs_of.
SplitWork split_work(std::span<const SpanRun> runs, std::int64_t split, int kv_heads, int multiprocessors, std::vector<std::int64_t>& parts) {
  const std::int64_t limit = item_limit(split);  // the plan's cut: no part holds more than kMaxItemTokens
  parts.resize(runs.size());
  kernels::PackingContext packing{0, false, multiprocessors};
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const SpanRun& run = runs[r];
    // A span of 0 tokens is one part; most private spans are within the limit.
    parts[r] = run.size.tokens <= limit ? 1 : (run.size.tokens + limit - 1) / limit;
    packing.add(run.query_rows, run.wgmma, kv_heads, run.count * parts[r]);
  }
  SplitWork work;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const SpanRun& run = runs[r];
    const std::int64_t part_tokens = parts[r] == 1 ? run.size.tokens : (run.size.tokens + parts[r] - 1) / parts[r];
    const int heads = run.wgmma ? 1 : kernels::mma_sync_heads_per_tile(run.query_rows, part_tokens, kv_heads, packing);
    const std::int64_t steps = steps_of(part_tokens * heads);
    const std::int64_t tiles = run.count * parts[r] * run.row_tiles * (heads == 1 ? kv_heads : (kv_heads + heads - 1) / heads);
    const int kind = run.wgmma ? 1 : 0;
    work.tiles[kind] += tiles;
    work.tile_steps[kind] += tiles * steps;
    work.longest_steps[kind] = std::max(work.longest_steps[kind], steps);
    if (run.wgmma) work.wgmma_tiles_by_steps.emplace_back(steps, tiles);
    work.state_rows += run.count * run.size.rows * parts[r];
  }
  by_steps_longest_first(work.wgmma_tiles_by_steps);
  return work;
}

// When the last SM finishes the wgmma tiles, dealt longest first each to the SM that is free
// first (one CTA per SM): a round of equal tiles at a time, the rest to the SMs that end earliest.
// (A few long tiles on many SMs, or 1.94 rounds of them, are counted as they run.)
// The SMs are kept as groups of equal history (every SM of a group was dealt the same tiles, so its
// end is the same double), earliest end first. A length's rest goes to the first groups and splits
// at most one, so there are at most min(lengths + 1, SMs) groups, and a length costs a merge of two
// ordered runs of them, not a pass over the SMs (a plan's load priced this deal per SM in a third of
// its host time; docs/KERNEL_NOTES.md, session 68). The ends are summed as a deal per SM sums them.
double dealt_wgmma_micros(const TilesBySteps& tiles_by_steps, int head_dim, int multiprocessors) {
  struct SmGroup {
    double end;
    std::int64_t sms;
  };
  const auto earlier = [](const SmGroup& a, const SmGroup& b) { return a.end < b.end; };
  std::vector<SmGroup> groups{{0.0, multiprocessors}};
  std::vector<SmGroup> merged;
  groups.reserve(tiles_by_steps.size() + 1);
  merged.reserve(tiles_by_steps.size() + 1);
  for (const auto& [steps, tiles] : tiles_by_steps) {
    const double tile = tile_micros(kWgmmaCost, steps, head_dim);
    const double rounds = static_cast<double>(tiles / multiprocessors) * tile;
    std::int64_t rest = tiles % multiprocessors;
    for (SmGroup& group : groups) group.end += rounds;  // the same sum for all: their order holds
    std::size_t taken = 0;  // groups [0, taken) get one tile more each; they end no later than the rest
    std::optional<SmGroup> split;
    for (; rest > 0; ++taken) {
      if (groups[taken].sms > rest) {
        groups[taken].sms -= rest;
        split = SmGroup{groups[taken].end + tile, rest};
        break;
      }
      groups[taken].end += tile;
      rest -= groups[taken].sms;
    }
    merged.clear();
    std::merge(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(taken), groups.begin() + static_cast<std::ptrdiff_t>(taken),
               groups.end(), std::back_inserter(merged), earlier);
    if (split) merged.insert(std::upper_bound(merged.begin(), merged.end(), *split, earlier), *split);
    groups.swap(merged);
  }
  return groups.back().end;
}

double micros(const SplitWork& work, const SplitShape& shape, int multiprocessors) {
  const auto slots = 2 * static_cast<std::int64_t>(multiprocessors);  // two mma.sync tiles or one wgmma tile per SM
  const double state_bytes = 2.0 * static_cast<double>(work.state_rows * shape.queries * shape.q_heads * shape.head_dim) * sizeof(float);
  const double states = state_bytes / kStateBytesPerMicro;
  const double wgmma_end = work.longest_steps[1] >= 0 ? dealt_wgmma_micros(work.wgmma_tiles_by_steps, shape.head_dim, multiprocessors) : 0.0;
  if (work.longest_steps[0] < 0) return wgmma_end + states;
  double total = 0.0;
  double longest_tile = 0.0;
  for (const int kind : {0, 1}) {
    if (work.longest_steps[kind] < 0) continue;
    const TileCost& cost = kind == 1 ? kWgmmaCost : kMmaSyncCost;
    total += cost.slots * (cost.start * static_cast<double>(work.tiles[kind]) +
                           cost.step * shape.head_dim / 128.0 * static_cast<double>(work.tile_steps[kind]));
    const TileCost& alone = kind == 1 ? kWgmmaCost : shape.strided_kv_heads ? kMmaSyncCost : kMmaSyncLoneCost;
    longest_tile = std::max(longest_tile, tile_micros(alone, work.longest_steps[kind], shape.head_dim));
  }
  // Only tiles that queue for the slots end unevenly: in one wave every tile starts at once, and the
  // longest tile bounds the call (experiment 62). The mma.sync tiles are counted alone, as in the
  // packing rule's queue (kernels/tile_shapes.hpp); beside wgmma tiles each is a CTA of its own.
  const double tail = work.tiles[0] > slots ? kMmaSyncTail * tile_micros(kMmaSyncCost, work.longest_steps[0], shape.head_dim) : 0.0;
  return std::max(std::max(total / static_cast<double>(slots), longest_tile) + tail, wgmma_end) + states;
}

// A persistent grid's static round robin against the hardware's dealing (experiment 65): at 1.03
// (1024 equal tiles on 264 CTAs) the persistent grid was 1-2 % faster, its producer streaming the
// next tile's first stages during the last one's end; at 1.18 and 1.27 (a few longer shared tiles
// among a thousand private ones, whose round robin gives the longer ones' CTAs a fifth tile) one CTA
// per tile was 2-3 % and 9 % faster.
constexpr double kUnevenRoundRobin = 1.10;

}  // namespace

bool round_robin_is_even(std::span<const std::int64_t> tile_positions, int head_dim, std::int64_t ctas) {
  if (ctas <= 0 || static_cast<std::int64_t>(tile_positions.size()) <= ctas) return true;  // one tile a CTA: the grids are the same
  std::vector<double> work(static_cast<std::size_t>(ctas), 0.0);
  double total = 0.0;
  for (std::size_t t = 0; t < tile_positions.size(); ++t) {
    const double tile = tile_micros(kMmaSyncCost, steps_of(tile_positions[t]), head_dim);
    work[t % static_cast<std::size_t>(ctas)] += tile;
    total += tile;
  }
  return *std::max_element(work.begin(), work.end()) <= kUnevenRoundRobin * total / static_cast<double>(ctas);
}

// A claim: two dependent atomics, a fence and a barrier before a CTA's first load. Experiment 67
// claimed on the `small` rows too, whose tiles past the first half of the SMs are one step long, and
// they took 0.9 µs longer on average.
constexpr double kClaimMicros = 1.0;
constexpr double kClaimMustSave = 2.0;  // times kClaimMicros

bool claims_first_tiles(std::span<const std::int64_t> tile_positions, int head_dim, int multiprocessors, int ctas_per_sm) {
  const auto tiles = static_cast<std::int64_t>(tile_positions.size());
  const std::int64_t spread = multiprocessors / 2;  // the first CTAs the hardware gives an SM each
  if (ctas_per_sm < 2 || tiles <= spread || tiles > multiprocessors) return false;
  const std::int64_t longest_past_spread = *std::max_element(tile_positions.begin() + spread, tile_positions.end());
  // Sharing its SM, a tile streams a step at a slot's rate among all the streaming CTAs, not the lone tile's.
  const double lost = (kMmaSyncCost.step - kMmaSyncLoneCost.step) * static_cast<double>(steps_of(longest_past_spread)) * head_dim / 128.0;
  return lost >= kClaimMustSave * kClaimMicros;
}

// Experiments 96 and 98 against one CTA per tile (H100): 1024 to 4096 tiles on 264 slots ran 2-7 %
// faster claimed and none slower; at 512 tiles (1.9 a slot) claims gained 1.5-4.6 % on seven rows
// of multi-stage tiles, lost 5 % on one (b64_p2k: a static first tile, which experiment 100 claims
// too), and lost 9-10 % on spec-decode b64 s8, whose 512 tiles are one stage each beside 128 wgmma
// tiles. Claiming every tile (experiment 100's probe, session 60) gained 5 % on hydragen
// b512_p1k_s64, whose 512 one-stage tiles run beside 64 wgmma tiles.
constexpr double kClaimedTilesPerSlot = 3.0;

bool claims_later_tiles(std::span<const std::int64_t> tile_positions, std::int64_t wgmma_tiles, int multiprocessors, int ctas_per_sm) {
  if (tile_positions.empty()) return false;
  if (static_cast<double>(tile_positions.size()) >= kClaimedTilesPerSlot * multiprocessors * ctas_per_sm) return true;
  if (2 * std::min<std::int64_t>(wgmma_tiles, multiprocessors) <= multiprocessors) return true;  // half the grid or more starts at once
  return std::any_of(tile_positions.begin(), tile_positions.end(), [](std::int64_t positions) { return positions > kernels::kMmaSyncOneStageTokens; });
}

// A partition must be priced this much cheaper than the two phases in sequence.
constexpr double kPartitionMustSave = 0.05;
// On slower HBM than the fit's, a partition giving the wgmma tiles fewer rounds is taken where priced
// within this of the cheapest: side by side for longer, both sides run slower than the larger of
// their prices says (session 61's k sweep, H100: hydragen b2048_p4k_s512 at 3 rounds on 52 SMs took
// 249.5 µs, at 2 rounds on 66 SMs 217.7; the model priced 3 rounds 2.5 % cheaper; experiment 106).
constexpr double kFewerRoundsWithin = 0.05;
// The most distinct wgmma tile lengths that wgmma_sms deals; beyond them it prices by the bound.
constexpr std::size_t kDealtLengths = 8;

// An mma.sync tile's 16-row groups (kernels/mma_sync_states.cu: one, two, or 16 rows a warp), up to
// a full tile's four. Experiment 97's sweep (H100) streamed a step in 0.42 SM-µs with 8-row tiles
// (hydragen) and 0.78-0.97 with 32-row ones (spec-decode's eight drafts, packed or in a GQA group).
constexpr std::size_t kMostRowGroups = kernels::kMmaSyncTileRows / 16;
std::int64_t row_groups(std::int64_t rows) { return std::clamp<std::int64_t>((rows + 15) / 16, 1, kMostRowGroups); }

int wgmma_sms(std::span<const std::int64_t> wgmma_tile_positions, std::span<const std::int64_t> mma_sync_tile_positions,
              std::span<const std::int32_t> mma_sync_tile_rows, int head_dim, int multiprocessors, int mma_sync_ctas_per_sm,
              double memory_bytes_per_micro) {
  if (wgmma_tile_positions.empty() || mma_sync_tile_positions.empty() || multiprocessors < 2) return 0;
  const double slowdown = hbm_slowdown(memory_bytes_per_micro);
  TilesBySteps wgmma_tiles_by_steps;
  double wgmma_work = 0.0;  // SM-µs
  double longest_wgmma = 0.0;
  for (const std::int64_t positions : wgmma_tile_positions) {
    const std::int64_t steps = steps_of(positions);
    if (wgmma_tiles_by_steps.empty() || wgmma_tiles_by_steps.back().first != steps) {
      wgmma_tiles_by_steps.emplace_back(steps, 0);  // an item's tiles come together: a pair an item, mostly
    }
    ++wgmma_tiles_by_steps.back().second;
    const double tile = tile_micros(kWgmmaCost, steps, head_dim);
    wgmma_work += tile;
    longest_wgmma = std::max(longest_wgmma, tile);
  }
  by_steps_longest_first(wgmma_tiles_by_steps);
  // The mma.sync tiles' steps by the 16-row groups of their query rows (all their kv heads): a lone
  // tile streams a step per group in kMmaSyncLoneCost's time, so that an SM's rate is bound by its
  // tiles' rows where few SMs stream, and by HBM where all do (experiment 99).
  std::array<std::int64_t, kMostRowGroups> steps_by_groups{};
  std::int64_t longest = 0;             // steps
  std::int64_t longest_group_steps = 0;  // steps times row groups
  for (std::size_t t = 0; t < mma_sync_tile_positions.size(); ++t) {
    const std::int64_t steps = steps_of(mma_sync_tile_positions[t]);
    const std::int64_t groups = row_groups(mma_sync_tile_rows[t]);
    steps_by_groups[static_cast<std::size_t>(groups - 1)] += steps;
    longest = std::max(longest, steps);
    longest_group_steps = std::max(longest_group_steps, steps * groups);
  }
  const auto mma_sync_tiles = static_cast<double>(mma_sync_tile_positions.size());
  // The mma.sync tiles on `sms` SMs: the tiles streaming at once (at most one a slot) share HBM's rate
  // (kMmaSyncCost's step is a slot's among all of the GPU's), but none streams faster than its rows
  // let a lone tile.
  const auto mma_sync_micros = [&](int sms) {
    const double slots = static_cast<double>(sms) * mma_sync_ctas_per_sm;
    const double streaming = std::min(slots, mma_sync_tiles);
    const double shared_step = slowdown * kMmaSyncCost.step * streaming / (static_cast<double>(multiprocessors) * mma_sync_ctas_per_sm);
    const double scale = head_dim / 128.0;
    double work = mma_sync_tiles * kMmaSyncCost.start;
    for (std::size_t g = 0; g < steps_by_groups.size(); ++g) {
      work += static_cast<double>(steps_by_groups[g]) * std::max(kMmaSyncLoneCost.step * static_cast<double>(g + 1), shared_step) * scale;
    }
    const double longest_tile = std::max(static_cast<double>(longest_group_steps) * kMmaSyncLoneCost.step, static_cast<double>(longest) * shared_step);
    return std::max(work / streaming, kMmaSyncCost.start + longest_tile * scale);
  };
  // The wgmma tiles on `sms` SMs: a bound for the scan (work spread evenly, and no sooner than the
  // longest tile), and their deal for the few candidates it leaves.
  // Dealing costs a merge of the SMs' groups per tile length: with many lengths (a tree's spans) the
  // bound stands in for it, so that a plan's load stays a few µs.
  const auto wgmma_bound = [&](int sms) { return std::max(wgmma_work / static_cast<double>(sms), longest_wgmma); };
  const bool few_lengths = wgmma_tiles_by_steps.size() <= kDealtLengths;
  const auto wgmma_dealt = [&](int sms) { return few_lengths ? dealt_wgmma_micros(wgmma_tiles_by_steps, head_dim, sms) : wgmma_bound(sms); };
  // Without a partition the wgmma CTAs take min(tiles, SMs) SMs first; the mma.sync tiles stream on
  // the SMs they leave until they end, then on all of them.
  const auto wgmma_tiles = static_cast<std::int64_t>(wgmma_tile_positions.size());
  const int first_wgmma_sms = static_cast<int>(std::min<std::int64_t>(multiprocessors, wgmma_tiles));
  const double wgmma_first = wgmma_dealt(first_wgmma_sms);
  const double beside = first_wgmma_sms < multiprocessors ? wgmma_first / mma_sync_micros(multiprocessors - first_wgmma_sms) : 0.0;
  const double in_sequence = beside >= 1.0 ? std::max(wgmma_first, mma_sync_micros(multiprocessors - first_wgmma_sms))
                                           : wgmma_first + (1.0 - beside) * mma_sync_micros(multiprocessors);
  // Scan every k by the bound (neither side is monotone in k where few tiles stream), then deal the
  // wgmma tiles for the best k, its neighbours, and the fewest SMs giving its rounds one more or fewer.
  const auto partitioned_micros = [&](int k, const auto& wgmma_micros) {
    const double mma_sync = mma_sync_micros(multiprocessors - k);
    return std::max(wgmma_beside_stream(wgmma_micros(k), mma_sync, slowdown), mma_sync);
  };
  int scanned = 0;
  double scanned_micros = 0.0;
  for (int k = 1; k < first_wgmma_sms; ++k) {
    const double partitioned = partitioned_micros(k, wgmma_bound);
    if (scanned == 0 || partitioned < scanned_micros) {
      scanned = k;
      scanned_micros = partitioned;
    }
  }
  if (scanned == 0) return 0;
  const auto rounds_on = [&](int k) { return (wgmma_tiles + k - 1) / k; };  // the wgmma tiles' rounds on k SMs
  const std::int64_t rounds = rounds_on(scanned);
  std::array<std::pair<int, double>, 6> priced{};  // each candidate k dealt, and its price
  std::size_t candidates = 0;
  int best_k = 0;
  double best = in_sequence * (1.0 - kPartitionMustSave);
  for (const std::int64_t candidate : {std::int64_t{scanned} - 1, std::int64_t{scanned}, std::int64_t{scanned} + 1, (wgmma_tiles + rounds) / (rounds + 1),
                                       (wgmma_tiles + rounds - 1) / rounds, rounds > 1 ? (wgmma_tiles + rounds - 2) / (rounds - 1) : 0}) {
    if (candidate < 1 || candidate >= first_wgmma_sms) continue;  // as many SMs as the wgmma CTAs take anyway: no partition
    const int k = static_cast<int>(candidate);
    const double partitioned = partitioned_micros(k, wgmma_dealt);
    priced[candidates++] = {k, partitioned};
    if (partitioned < best) {
      best = partitioned;
      best_k = k;
    }
  }
  if (best_k == 0 || slowdown <= 1.0) return best_k;
  int chosen = best_k;
  double chosen_micros = best;
  for (std::size_t c = 0; c < candidates; ++c) {
    const auto [k, partitioned] = priced[c];
    if (partitioned > best * (1.0 + kFewerRoundsWithin)) continue;
    if (rounds_on(k) < rounds_on(chosen) || (rounds_on(k) == rounds_on(chosen) && partitioned < chosen_micros)) {
      chosen = k;
      chosen_micros = partitioned;
    }
  }
  return chosen;
}

double estimated_micros(std::span<const SpanSize> spans, std::int64_t split, const SplitShape& shape, int multiprocessors) {
  std::vector<std::int64_t> parts;
  return micros(split_work(runs_of(spans, shape), split, shape.kv_heads, multiprocessors, parts), shape, multiprocessors);
}

std::int64_t cheapest_split(std::span<const SpanSize> spans, const SplitShape& shape, int multiprocessors) {
  const std::vector<SpanRun> runs = runs_of(spans, shape);
  std::int64_t longest = 0;
  for (const SpanRun& run : runs) longest = std::max(longest, run.size.tokens);
  std::int64_t best_split = 0;
  std::vector<std::int64_t> parts;
  const SplitWork whole = split_work(runs, 0, shape.kv_heads, multiprocessors, parts);
  double best = micros(whole, shape, multiprocessors);
  std::int64_t best_wgmma_tiles = whole.tiles[1];
  const auto consider = [&](std::int64_t split, double must_save) {
    const std::int64_t candidate = std::max(split, shape.min_split);
    if (candidate >= longest) return;
    const SplitWork work = split_work(runs, candidate, shape.kv_heads, multiprocessors, parts);
    const double candidate_micros = micros(work, shape, multiprocessors);
    if (candidate_micros < best * (1.0 - must_save)) {
      best = candidate_micros;
      best_split = candidate;
      best_wgmma_tiles = work.tiles[1];
    }
  };
  for (std::int64_t split = 64; split < longest; split *= 2) consider(split, 0.0);
  // Where a shared span on wgmma tiles sits beside short private spans (a decode step's one to a
  // few tokens: at most one mma.sync stage), the longest span in 3, 5, 6, 7, ... nearly equal parts
  // too, each a whole number of wgmma stages (and chunks): between the powers of two, fewer wgmma
  // tiles can leave SMs to the private tiles, which cannot share an SM with one, so that they end
  // beside the wgmma tiles instead of after them (experiment 73, H100: b64_p4k's 4096-token prompt
  // in 6 parts of 768 against 8 of 512, 35.5 -> 32.7 us a call and 31.5 -> 26.5 a decode-loop
  // layer). Beside longer private spans the same cuts ran 1.5-2.7 % slower where the model priced
  // them 1.6-2.5 % faster (gqa-llama3 b64_p8k and b64_p32k, 512 private tokens). Not where the best
  // power of two's wgmma tiles already leave half the SMs free (and the search's host time is spared).
  if (2 * best_wgmma_tiles <= multiprocessors) return best_split;  // also where no span is wide
  std::int64_t longest_narrow = -1;
  for (const SpanRun& run : runs) {
    if (!run.wgmma) longest_narrow = std::max(longest_narrow, run.size.tokens);
  }
  if (longest_narrow < 0 || longest_narrow > kernels::kMmaSyncOneStageTokens) return best_split;
  const std::int64_t granule = std::lcm<std::int64_t>(kernels::kWgmmaStageTokens, std::max<std::int64_t>(shape.min_split, 1));
  std::int64_t last_split = 0;
  for (std::int64_t parts = 3; parts <= kMostEvenParts; ++parts) {
    const std::int64_t split = (longest + parts * granule - 1) / (parts * granule) * granule;
    const bool power_of_two = (split & (split - 1)) == 0;  // tried above
    if (split != last_split && !power_of_two) consider(split, kEvenPartsMustSave);
    last_split = split;
  }
  return best_split;
}

}  // namespace chunktree::cost_model
