// Partial states on mma.sync tiles: the split-KV phase (private spans, decode without sharing)
// and every item of at most 64 query rows per kv head. Bandwidth-bound, so built to keep HBM busy:
// in each CTA a producer warpgroup streams tile after tile of K and V, 64 positions per stage
// (packed across runs, and on into the next tile without a pause) with cp.async into a ring of
// stages that completes on mbarriers, and four consumer warps compute on tensor cores without a
// block-wide barrier per step. The consumers copy each tile's record (with its item and first KV
// run) and its Q rows themselves, a next tile's during the end phase of the tile before, so that a
// tile's start costs them no dependent global loads. Launched alone, the grid is persistent (two
// CTAs per SM walk the tiles) or has one CTA per tile; beside the wgmma kernel it is persistent with
// its CTAs claiming every tile where that pays or the SMs are split, else one CTA per tile
// (docs/KERNEL_NOTES.md, experiments 13, 65, 96, 100 and 105). A tile of at most 16 query rows (decode: one row's GQA group)
// gives each consumer warp its own quarter of every stage's positions, two 16-row groups give each
// warp half, more give each warp 16 rows and all positions; at the end of the tile the warps park
// their states in shared memory and together combine each row's parts and store the rows. A tile
// of packed kv heads (short items of at most 16 query rows per kv head, kernels/tile_shapes.hpp)
// fills block h of each stage with 16 positions of its h-th kv head, and consumer warp h serves
// that head alone.
// This file holds the consumers' stages and the kernel; the tile's layout (threads, stages, warp
// shares, the ring) is in mma_sync_layout.cuh, the copies of a tile's record, Q and KV in
// mma_sync_producer.cuh.
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "chunktree/types.hpp"
#include "runtime/check.cuh"
#include "kernels/launch_setup.cuh"
#include "kernels/mma_sync_layout.cuh"
#include "kernels/mma_sync_producer.cuh"
#include "kernels/partial_states.cuh"
#include "kernels/tile_trace.cuh"
#include "kernels/tiles.cuh"

#include <cutlass/arch/arch.h>
#include <cutlass/arch/barrier.h>
#include <cutlass/arch/reg_reconfig.h>

namespace chunktree::kernels {
namespace {

using namespace mma_sync;  // the tile's layout and its producer (mma_sync_layout.cuh, mma_sync_producer.cuh)

// S = Q·Kᵀ for the warp's 16 query rows (from row0 of the Q tile) and the 16 positions of block
// `block` of the stage.
template <typename Element, int D, typename QTile, typename StageTile>
__device__ void scores(const QTile& q_tile, int row0, const StageTile& k_tile, int block, tiles::Accumulator (&s)[2]) {
#pragma unroll
  for (int n = 0; n < 2; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
  for (int kc = 0; kc < D / 8; kc += 2) {
    std::uint32_t a[4];
    std::uint32_t k[4];
    tiles::load_a(q_tile, row0, kc, a);
    tiles::load_b_nk(k_tile, block * 16, kc, k);
    tiles::mma<Element>(s[0], a, k[0], k[1]);
    tiles::mma<Element>(s[1], a, k[2], k[3]);
  }
}

// The online softmax over one block of 16 columns: scale, mask columns past `last_visible` (per
// row: the stage's end or the causal limit), fold the block's maximum into the running state,
// rescale o, and leave P = exp2(s − max) in s.
template <int D>
__device__ void online_softmax(tiles::Accumulator (&s)[2], int column0, const int (&last_visible)[2], float scale_log2,
                               OnlineSoftmax (&rows)[2], tiles::Accumulator (&o)[D / 8]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float block_max = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 2 * h; e < 2 * h + 2; ++e) {
        const int column = column0 + n * 8 + 2 * (lane % 4) + e % 2;
        s[n][e] = column <= last_visible[h] ? s[n][e] * scale_log2 : -INFINITY;
        block_max = fmaxf(block_max, s[n][e]);
      }
    }
    const float rescale = rows[h].fold(tiles::row_max(block_max));
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      o[d][2 * h] *= rescale;
      o[d][2 * h + 1] *= rescale;
    }
    const float reference = rows[h].reference();
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 2 * h; e < 2 * h + 2; ++e) {
        s[n][e] = exp2f(s[n][e] - reference);
        rows[h].sum += s[n][e];
      }
    }
  }
}

// O += P·V over the 16 positions of block `block` of the stage.
template <typename Element, int D, typename StageTile>
__device__ void accumulate(const tiles::Accumulator (&p)[2], const StageTile& v_tile, int block, tiles::Accumulator (&o)[D / 8]) {
  std::uint32_t a[4];
  tiles::accumulators_to_a<Element>(p[0], p[1], a);
#pragma unroll
  for (int dc = 0; dc < D / 8; dc += 2) {
    std::uint32_t v[4];
    tiles::load_b_kn(v_tile, block * 16, dc, v);
    tiles::mma<Element>(o[dc], a, v[0], v[1]);
    tiles::mma<Element>(o[dc + 1], a, v[2], v[3]);
  }
}

// The end phase of a tile: every warp parks its rows' unnormalised state in shared memory, then
// the four warps together combine each row's parts (a row group's split warps) and store the rows,
// a warp a row at a time, each lane four adjacent dims: one rolled loop for every warp layout,
// coalesced stores, and little code (experiment 49: the warps' combine in registers took ~2.4 µs
// a tile). o sits in the tile's last stage, which the consumers hold until the end phase is done:
// slot w (rows 16w .. 16w + 15) is warp w's, its float2 pairs swizzled by row so that a warp's
// parking stores spread over all banks.
struct ParkedStates {
  float* o;      // [kParkedRows][D], swizzled
  float* stats;  // max [kParkedRows], then sum [kParkedRows]
  __device__ static int pair(int row, int pair_index) { return pair_index ^ ((row & 3) << 2); }
  __device__ static int quad(int row, int quad_index) { return quad_index ^ ((row & 3) << 1); }
};

template <int D>
__device__ void park_state(const ParkedStates& parked, int warp, const tiles::Accumulator (&o)[D / 8], const OnlineSoftmax (&rows)[2]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = 16 * warp + lane / 4 + 8 * h;
    auto* o_row = reinterpret_cast<float2*>(parked.o + row * D);
#pragma unroll
    for (int d = 0; d < D / 8; ++d) o_row[ParkedStates::pair(row, 4 * d + lane % 4)] = make_float2(o[d][2 * h], o[d][2 * h + 1]);
    if (lane % 4 == 0) {
      parked.stats[row] = rows[h].max;
      parked.stats[kParkedRows + row] = rows[h].sum;
    }
  }
}

// The tile's rows in the end phase: 16 per row group, row r being TileRow r. Warp w combines and
// stores rows w, w + 4, ...; its lane i looks up the target of its i-th row (≤ 64 rows: at most 16
// a warp) before the states are parked, so that the rows' dependent global loads overlap each other
// and the parking.
struct EndRows {
  int rows;
  bool packed;
  int m_begin;
  int query_rows;
  __device__ EndRows(const WorkTile& tile, const WarpLayout& layout, bool packed_heads, int item_query_rows)
      : rows(16 * layout.row_groups), packed(packed_heads), m_begin(static_cast<int>(tile.m_begin)), query_rows(item_query_rows) {}
  __device__ bool stored(int row) const { return row < rows && TileRow(packed, m_begin, row).item_row < query_rows; }
  __device__ RowTarget lane_target(const PartialArgs& args, const WorkTile& tile, bool to_output) const {
    const int row = consumer_warp() + kConsumerWarps * static_cast<int>(threadIdx.x % 32);
    if (!stored(row)) return RowTarget(to_output);
    return RowTarget(args, tile, TileRow(packed, m_begin, row).query(args, tile), to_output);
  }
};

// Combines the `parts` parked states of each of the tile's rows and stores the rows, in two steps.
// First lane i of warp w works out the combine of its row w + 4i — its parts' weights, its sum,
// its lse (stored by that lane) — for all of the warp's rows at once. Then the warp stores row after
// row, each lane four adjacent dims, taking the row's target and its parts' factors (weight / sum)
// by shuffle: no exp, division or global load left in the row loop. `parts` is 0 for an item
// without positions: its rows store the empty state.
template <int D>
__device__ void combine_and_store(const PartialArgs& args, const EndRows& end_rows, const RowTarget& lane_target, int splits, int parts,
                                  const ParkedStates& parked) {
  constexpr int kQuads = D / 4;
  constexpr int kQuadsPerLane = (kQuads + 31) / 32;
  constexpr int kMaxParts = kConsumerWarps;
  const int lane = threadIdx.x % 32;
  const auto part_row = [&](int row, int p) { return 16 * ((row / 16) * splits + p) + row % 16; };  // in slot group · splits + p
  float factor[kMaxParts] = {};
  const int lane_row = consumer_warp() + kConsumerWarps * lane;
  if (end_rows.stored(lane_row)) {
    float top = -INFINITY;
#pragma unroll
    for (int p = 0; p < kMaxParts; ++p) {
      if (p < parts) top = fmaxf(top, parked.stats[part_row(lane_row, p)]);
    }
    // A part with no position seen (max −inf) weighs 0; a NaN part keeps its NaN sum.
    float sum = 0.0f;
#pragma unroll
    for (int p = 0; p < kMaxParts; ++p) {
      if (p >= parts) break;
      const float max = parked.stats[part_row(lane_row, p)];
      factor[p] = max == -INFINITY ? 0.0f : exp2f(max - top);
      sum += factor[p] * parked.stats[kParkedRows + part_row(lane_row, p)];
    }
    const RowStore<D> store(args, lane_target, top, sum);
    store.put_stats();
#pragma unroll
    for (int p = 0; p < kMaxParts; ++p) factor[p] *= store.inverse();
  }
#pragma unroll 1
  for (int i = 0, row = consumer_warp(); row < end_rows.rows; ++i, row += kConsumerWarps) {
    if (!end_rows.stored(row)) continue;
    const RowTarget target = lane_target.from_lane(i);
    float row_factor[kMaxParts];
#pragma unroll
    for (int p = 0; p < kMaxParts; ++p) row_factor[p] = __shfl_sync(0xffffffffu, factor[p], i);
#pragma unroll
    for (int q = 0; q < kQuadsPerLane; ++q) {
      const int quad = lane + 32 * q;
      if (quad >= kQuads) break;
      float o[4] = {};
#pragma unroll
      for (int p = 0; p < kMaxParts; ++p) {
        if (p >= parts) break;
        const int at = part_row(row, p);
        const float4 value = reinterpret_cast<const float4*>(parked.o + at * D)[ParkedStates::quad(at, quad)];
        o[0] += row_factor[p] * value.x;
        o[1] += row_factor[p] * value.y;
        o[2] += row_factor[p] * value.z;
        o[3] += row_factor[p] * value.w;
      }
      store_row_dims<D>(args, target, 4 * quad, o);
    }
  }
}

// One consumer warp's work on a tile: its 16 query rows over its blocks of every stage, then the
// end phase (the four warps' combine and store of every row). Every consumer warp passes every
// stage (a warp without rows only waits and releases), so the ring's mbarriers always count every
// consumer thread. take_next() runs as the last stage starts (or after the tile, one without
// stages): the next tile's record, where it is claimed, lands during that stage. Once every warp is
// done with the Q rows, start_next() starts copying the next tile's, which come in during the end
// phase.
template <typename Element, int D, int Stages, typename TakeNext, typename StartNext>
__device__ void consume(const PartialArgs& args, bool to_output, std::uint32_t tile, const WorkTile& work, Ring<Stages>& ring,
                        const Element* q_data, Element* stages, float* parked_stats, TakeNext take_next, StartNext start_next) {
  const work::Item& item = work.item;
  const int query_rows = static_cast<int>(item.row_end - item.row_begin) * args.queries * args.group;
  using QTile = tiles::SharedTile<Element, kTileRows, D>;
  using StageTile = tiles::SharedTile<Element, kStageTokens, D>;
  const StageFill fill(work);
  const WarpLayout layout(min(kTileRows, query_rows - static_cast<int>(work.m_begin)), fill);
  const WarpShare share(layout, fill, static_cast<int>(work.m_begin), consumer_warp());
  const int lane = threadIdx.x % 32;
  const QTile q_tile{const_cast<Element*>(q_data)};

  // The causal limit of this lane's two rows (rows past the tile see everything; never stored).
  int limit[2] = {INT_MAX, INT_MAX};
  if (item.causal != 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = share.first_row + lane / 4 + 8 * h;
      if (m < query_rows) limit[h] = QueryRow(args, work, m, share.head_in_tile).limit(args, work);
    }
  }

  tiles::Accumulator o[D / 8] = {};
  OnlineSoftmax rows[2];
  const int first_position = work.first_run.position;
  const int steps = fill.count(item);
  int last_stage = 0;
  for (int step = 0; step < steps; ++step, ++ring.passed) {
    const int stage = ring.stage();
    const int position = first_position + step * fill.tokens_per_stage;
    const int last_column = fill.tokens(item, step) - 1;
    const int last_visible[2] = {min(last_column, limit[0] - position), min(last_column, limit[1] - position)};  // INT_MAX − position: in range
    if (step + 1 == steps) take_next();
    cutlass::arch::ClusterBarrier::wait(&ring.full[stage], ring.phase());
    if (step == 0 && threadIdx.x == kProducerThreads) tile_trace::stamp(tile, tile_trace::first_stage);
    const StageTile k_tile{stages + (2 * stage) * StageTile::kElements};
    const StageTile v_tile{stages + (2 * stage + 1) * StageTile::kElements};
    // One block at a time keeps S at 8 registers beside o.
    for (int b = 0; share.has_rows && b < share.blocks && share.column0 + kBlockTokens * b <= last_column; ++b) {
      tiles::Accumulator s[2];
      scores<Element, D>(q_tile, share.row0, k_tile, share.block0 + b, s);
      online_softmax<D>(s, share.column0 + kBlockTokens * b, last_visible, args.scale_log2, rows, o);
      accumulate<Element, D>(s, v_tile, share.block0 + b, o);
    }
    last_stage = stage;
    if (step + 1 < steps) cutlass::arch::ClusterBarrier::arrive(&ring.empty[stage]);  // the last: the end phase's, released after it
  }

  if (steps == 0) take_next();
  if (threadIdx.x == kProducerThreads) tile_trace::stamp(tile, tile_trace::stages_done);

#pragma unroll
  for (int h = 0; h < 2; ++h) rows[h].sum = tiles::row_sum(rows[h].sum);
  const ParkedStates parked{reinterpret_cast<float*>(stages + 2 * last_stage * StageTile::kElements), parked_stats};
  const EndRows end_rows(work, layout, fill.packed(), query_rows);
  const RowTarget lane_target = end_rows.lane_target(args, work, to_output);
  // Every warp is done reading the last stage (and the last tile's parked states) before any parks,
  // and done with Q before the next tile's comes in; the next tile's record, copied at this tile's
  // start or last stage, has landed (each thread waits for its own copies before the barrier).
  cute::cp_async_wait<0>();
  cutlass::arch::NamedBarrier::sync(kConsumerThreads, kStatesParkedBarrier);
  start_next();
  if (steps > 0) {
    if (share.has_rows) park_state<D>(parked, consumer_warp(), o, rows);
    cutlass::arch::NamedBarrier::sync(kConsumerThreads, kStatesParkedBarrier);
  }
  if (threadIdx.x == kProducerThreads) tile_trace::stamp(tile, tile_trace::combined);
  combine_and_store<D>(args, end_rows, lane_target, layout.splits, steps > 0 ? layout.splits : 0, parked);
  if (steps > 0) cutlass::arch::ClusterBarrier::arrive(&ring.empty[last_stage]);
}

// A replayed launch's grid is sized for any later count (two CTAs per SM), so with fewer tiles than
// CTAs only some CTAs work, and the hardware's first CTAs of such a grid share SMs (128 of them on 120
// SMs on the H200; experiment 66). There each CTA claims its first tile instead (experiment 67): the
// first CTA on each SM takes the next low slot, the others the next high one (from the top), so that up
// to one tile per SM runs on distinct SMs wherever the grid landed. The working CTAs (working_ctas)
// claim as many slots in all, low and high meeting, so the slots are 0 .. working_ctas - 1 each once (nothing waits, so a grid
// that is not all resident claims the same way). Thread 0 claims; the returned word's top bit says
// that this CTA claimed last and zeroes the counters for the next launch (`claimed` wraps to zero by
// itself). Counters left wrong (a launch cut short) would give a slot past the grid: a trap, not a
// silent missing tile. The next mma.sync launch starts only after this one ends: it is chained, if at
// all, to the wgmma kernel of its own call, which is never chained to anything.
constexpr std::uint32_t kLastClaim = 1u << 31;
__device__ std::uint32_t claim_first_tile(SlotClaims& claims, std::uint32_t ctas) {
  const auto sm = static_cast<std::uint32_t>(cutlass::arch::SmId());
  const bool first_on_sm = sm < SlotClaims::kSms && atomicAdd(&claims.on_sm[sm], 1u) == 0;
  const std::uint32_t slot = first_on_sm ? atomicAdd(&claims.low, 1u) : ctas - 1 - atomicAdd(&claims.high, 1u);
  if (slot >= ctas) __trap();
  __threadfence();  // this CTA's claims are done before it counts itself
  if (atomicInc(&claims.claimed, ctas - 1) != ctas - 1) return slot;
  __threadfence();  // every other CTA's claims are seen before the counters are zeroed
  return slot | kLastClaim;
}

// The last claimer's threads zero the rank and ticket counters (every other CTA has claimed: none
// reads them again in this launch).
__device__ void zero_claims(SlotClaims& claims) {
  static_assert(SlotClaims::kSms <= kThreads);
  if (threadIdx.x < SlotClaims::kSms) claims.on_sm[threadIdx.x] = 0;
  if (threadIdx.x == 0) {
    claims.low = 0;
    claims.high = 0;
  }
}

// The tiles claimed at run time: all of them (experiment 100), or those after a replayed launch's
// slot-claimed first ones (experiment 96). Beside the wgmma kernel, whose CTAs hold their SMs first
// (launched first, or with this grid chained to them: experiment 104), a grid's CTAs start at
// different times: dealt every working_ctas-th tile, one placed as the
// wgmma CTAs end starts late with a full share and ends last; given only its first tile, it still
// starts that tile last (experiment 99's gqa-llama3 b64_p2k). Claimed, it takes only what is left.
// Thread 0 draws a CTA's first ticket as the CTA starts. For the tile after each, once the tile's
// last stage is issued and the consumers have taken the queue's one slot (as they start the last
// stage of the tile before), the producer's thread 0 draws a ticket and puts its tile in shared
// memory: in a word that the producer's threads read before they stream it (between two producer
// barriers), and in the slot that the consumers take from as they start the tile's last stage (they
// copy the next tile's record then, and its Q in the end phase). So a CTA commits to a tile only
// once at most a ring of stages (and the end phases of the tiles they belong to) are left before its
// consumers reach it (experiment 103: drawn as a tile's streaming started, a CTA held a whole tile of
// four stages more, and the last claimed tiles of a launch started late behind it); tiles shorter
// than the ring still have at most two past the consumers' (experiment 101). The
// producer fits its 56 registers only while ptxas keeps the tile's values (record, pointers, counts)
// in uniform registers, which it gives up (~30 more live registers: spills) where the tile loop
// holds an atomic under a branch (compiled to its warp-aggregated form: vote, popc, shuffle) beside
// a wait loop, or a wait loop under thread 0's branch in the stage loop. So thread 0's atomic is
// predicated, not branched on, and warp 0 waits for a free slot on a warp-uniform branch, every
// producer thread counting the puts. A ticket past the tiles ends both roles' loops; each CTA ends
// on one such ticket, and the last to do so zeroes the counters for the next launch.
template <typename Shape>
class ClaimedTiles {
 public:
  __device__ static void init() {
    for (int s = 0; s < kClaimedTileSlots; ++s) {
      cutlass::arch::ClusterBarrier::init(full(s), 1);
      cutlass::arch::ClusterBarrier::init(empty(s), kConsumerThreads);
    }
  }
  // Every producer thread, once a tile's stages are issued: warp 0 waits for the queue's slot to free
  // (a warp-uniform branch: see above), then thread 0 takes the ticket (its atomic predicated, not
  // branched on) and puts its tile for both roles (tile `ticket_base` + ticket: 0 where the first
  // tiles are tickets too, else the first tile past the slot-claimed ones).
  __device__ void put_ticket(SlotClaims& claims, std::uint32_t ticket_base) {
    const int slot = static_cast<int>(puts_ % kClaimedTileSlots);
    if (cutlass::canonical_warp_idx_sync() == 0 && puts_ >= kClaimedTileSlots) {
      cutlass::arch::ClusterBarrier::wait(empty(slot), ((puts_ / kClaimedTileSlots) & 1u) ^ 1u);
    }
    std::uint32_t ticket = 0;
    asm volatile(
        "{\n\t"
        ".reg .pred p;\n\t"
        "setp.eq.u32 p, %1, 0;\n\t"
        "@p atom.global.add.u32 %0, [%2], 1;\n\t"
        "}"
        : "+r"(ticket)
        : "r"(threadIdx.x), "l"(__cvta_generic_to_global(&claims.later))
        : "memory");
    if (threadIdx.x == 0) {
      const std::uint32_t tile = ticket_base + ticket;
      indices()[slot] = tile;
      *producer_index() = tile;
      cutlass::arch::ClusterBarrier::arrive(full(slot));
    }
    ++puts_;
  }
  // Every producer thread, once the tile's ticket is put: the next tile.
  __device__ static std::uint32_t producer_next() {
    cutlass::arch::NamedBarrier::sync(kProducerThreads, kTileClaimedBarrier);
    const std::uint32_t tile = *producer_index();
    cutlass::arch::NamedBarrier::sync(kProducerThreads, kTileClaimedBarrier);  // read before the next put
    return tile;
  }
  // Every consumer thread, as a tile's last stage starts: the next tile.
  __device__ std::uint32_t consumer_next() {
    const int slot = static_cast<int>(taken_ % kClaimedTileSlots);
    cutlass::arch::ClusterBarrier::wait(full(slot), (taken_ / kClaimedTileSlots) & 1u);
    const std::uint32_t tile = indices()[slot];
    cutlass::arch::ClusterBarrier::arrive(empty(slot));
    ++taken_;
    return tile;
  }
  // Thread 0, as the CTA starts: the first tile of a CTA without a given one, a ticket (experiment 100),
  // counted from zero like the later ones.
  __device__ static std::uint32_t first_ticket(SlotClaims& claims) { return atomicAdd(&claims.later, 1u); }
  // Every thread of a CTA that reaches it, after the CTA's ticket past the tiles: thread 0 counts the
  // CTA's end (every CTA that took a ticket ends once: those given a first tile, or all working CTAs
  // where the first tiles are tickets too; the last to end zeroes the counters for the next launch).
  // Then the merge may start, as after any CTA's last K/V copy; and where this grid is chained to the
  // wgmma kernel's (experiment 104), the CTA that ended last waits for that kernel, so that the grid
  // ends no sooner and the merge chained to it reads every state (a chained kernel's wait covers only
  // the kernel before it).
  __device__ static void end(const PartialArgs& args, std::uint32_t ctas_with_tiles) {
    const bool ended_last = threadIdx.x == 0 && count_end(*args.slot_claims, ctas_with_tiles);
    let_chained_kernel_start();
    if (ended_last && args.mma_sync_chained != 0) wait_for_previous_kernel();
  }

 private:
  // Thread 0: true in the CTA that ended last.
  __device__ static bool count_end(SlotClaims& claims, std::uint32_t ctas_with_tiles) {
    __threadfence();  // this CTA's tickets are taken before it counts itself
    const std::uint32_t ended = atomicAdd(&claims.ended, 1u);
    // More ends than CTAs: counters left by a launch cut short, or two launches on one workspace at
    // once, whose tickets skip tiles. A trap, not silently missing rows.
    if (ended >= ctas_with_tiles) __trap();
    if (ended + 1 != ctas_with_tiles) return false;
    __threadfence();  // every other CTA's tickets are seen before the counters are zeroed
    atomicExch(&claims.later, 0u);
    atomicExch(&claims.ended, 0u);
    return true;
  }
  // Addresses from the shared base (no registers held across the tile loop).
  __device__ static unsigned char* base() {
    extern __shared__ __align__(128) unsigned char shared[];
    return shared;
  }
  __device__ static std::uint64_t* full(int slot) { return reinterpret_cast<std::uint64_t*>(base() + Shape::kClaimedTilesOffset) + slot; }
  __device__ static std::uint64_t* empty(int slot) { return full(kClaimedTileSlots) + slot; }
  __device__ static std::uint32_t* indices() { return reinterpret_cast<std::uint32_t*>(base() + Shape::kClaimedIndicesOffset); }
  __device__ static std::uint32_t* producer_index() { return indices() + kClaimedTileSlots; }

  std::uint32_t taken_ = 0;   // a consumer thread's
  std::uint32_t puts_ = 0;    // a producer thread's (the same in all: held in a uniform register)
};

template <typename Element, int D>
__global__ void __launch_bounds__(kThreads, StreamShape<D>::kMinBlocksPerSm) mma_sync_states_kernel(const PartialArgs args) {
  const tile_trace::Clock clock;  // a trace build's: this CTA's entry, stamped by consumer thread 0 as it leaves
  using Shape = StreamShape<D>;
  constexpr int kStages = Shape::kStages;
  extern __shared__ __align__(128) unsigned char shared[];
  auto* barriers = reinterpret_cast<std::uint64_t*>(shared);
  Ring<kStages> ring{barriers, barriers + kStages};
  ClaimedTiles<Shape> later_tiles;
  auto* records = reinterpret_cast<WorkTile*>(shared + Shape::kBarrierBytes);  // two: by tile parity
  auto* parked_stats = reinterpret_cast<float*>(shared + Shape::kBarrierBytes + Shape::kRecordsBytes);
  auto* q_data = reinterpret_cast<Element*>(shared + Shape::kControlBytes);
  Element* stages = q_data + kTileRows * D;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      cutlass::arch::ClusterBarrier::init(&ring.full[s], kProducerThreads);
      cutlass::arch::ClusterBarrier::init(&ring.empty[s], kConsumerThreads);
    }
    ClaimedTiles<Shape>::init();
  }
  tile_trace::begin();  // a trace build's flag, read once a CTA
  cutlass::arch::fence_barrier_init();
  __syncthreads();

  // This CTA's tiles: its first (blockIdx.x, a slot claimed where a replayed launch's live plan says
  // so, or a ticket), then every ctas-th or those it claims (ClaimedTiles); CTAs without a first have none, and a
  // replayed launch's CTAs past the live plan's working ones (an SM partition, experiment 95) exit at
  // once. The producer streams their KV without a pause; the consumers copy each tile's record and Q
  // rows themselves: the first tile's while the producer starts its KV (experiment 13), each next
  // one's record at the start of a tile (or of its last stage, where claimed) and its Q in the tile's end phase. A hand-off by the producer
  // completed only with its in-flight stages (cp.async.mbarrier.arrive tracks every earlier cp.async
  // of the thread), ~5.6 µs after the release (experiment 92). Both grids run the same loop of each
  // role, so that the kernel's code holds one copy of each stage (experiment 48: code size is latency).
  const std::uint32_t num_tiles = tile_count(args);
  const std::uint32_t ctas = working_ctas(args);
  const auto leave = [&] {
    if (threadIdx.x == kProducerThreads) clock.left(blockIdx.x);
  };
  if (blockIdx.x >= ctas) {
    leave();
    return;
  }
  const std::uint32_t claims = tile_claims(args);  // the same in every CTA
  const bool claims_later = (claims & kClaimLaterTiles) != 0;
  std::uint32_t first_tile = blockIdx.x;
  // Claimed where the live plan of a replayed launch says so (cost_model::claims_first_tiles), a
  // slot per SM first. Not at d = 256, whose one CTA per SM already spreads them.
  const bool slot_claimed = Shape::kMinBlocksPerSm > 1 && (claims & kClaimFirstTiles) != 0;
  // Otherwise, where the later tiles are claimed, the first is a ticket too (experiment 100): a CTA
  // that the hardware places only as the wgmma CTAs end takes what is left, not a tile dealt to it.
  const bool first_is_ticket = claims_later && !slot_claimed;
  auto* claimed = reinterpret_cast<std::uint32_t*>(shared + Shape::kFirstTileOffset);
  if (slot_claimed) {
    if (threadIdx.x == 0) *claimed = claim_first_tile(*args.slot_claims, ctas);
    __syncthreads();
    if (*claimed & kLastClaim) zero_claims(*args.slot_claims);
    first_tile = *claimed & ~kLastClaim;
  } else if (first_is_ticket) {
    if (threadIdx.x == 0) *claimed = ClaimedTiles<Shape>::first_ticket(*args.slot_claims);
    __syncthreads();
    first_tile = *claimed;
  }
  // The CTAs that take tickets each end once, on a ticket past the tiles (a first one included).
  const std::uint32_t ticketing_ctas = first_is_ticket ? ctas : min(ctas, num_tiles);
  if (first_tile >= num_tiles) {
    if (first_is_ticket) ClaimedTiles<Shape>::end(args, ticketing_ctas);
    leave();
    return;
  }
  const std::uint32_t ticket_base = first_is_ticket ? 0u : ctas;  // the tile of ticket 0
  if (threadIdx.x < kProducerThreads) {
    if constexpr (Shape::kReallocateRegisters) cutlass::arch::warpgroup_reg_dealloc<kProducerRegisters>();
    bool queries_awaited = false;  // the first tile's Q copies go before the producer's second stage
    const auto await_queries_once = [&] {
      if (queries_awaited) return;
      FirstQueries::await();
      queries_awaited = true;
    };
    for (std::uint32_t t = first_tile, next = 0; t < num_tiles; t = next) {
      if (threadIdx.x == 0) tile_trace::stamp(t, tile_trace::taken);
      stream_kv<Element, D>(args, args.tiles[t], t != first_tile, ring, stages, await_queries_once);
      await_queries_once();  // a first tile without stages
      if (claims_later) later_tiles.put_ticket(*args.slot_claims, ticket_base);
      next = claims_later ? ClaimedTiles<Shape>::producer_next() : t + ctas;
    }
    // Every K/V copy of this CTA is issued (the consumers' last record and Q copies may follow): the
    // merge may start.
    if (claims_later) {
      ClaimedTiles<Shape>::end(args, ticketing_ctas);
    } else {
      let_chained_kernel_start();
    }
    return;
  }
  if constexpr (Shape::kReallocateRegisters) cutlass::arch::warpgroup_reg_alloc<kConsumerRegisters>();
  const int thread = static_cast<int>(threadIdx.x) - kProducerThreads;
  const bool to_output = writes_output(args);  // a global load in replayed launches: asked once, not per tile
  copy_tile<kConsumerThreads, Element, D>(args, args.tiles[first_tile], &records[0], q_data, thread);
  cute::cp_async_fence();
  FirstQueries::issued();
  std::uint32_t tiles_seen = 0;
  for (std::uint32_t t = first_tile, next = 0; t < num_tiles; t = next, ++tiles_seen) {
    cute::cp_async_wait<0>();
    cutlass::arch::NamedBarrier::sync(kConsumerThreads, kQueryLoadedBarrier);  // this tile's record and Q have landed
    if (thread == 0) tile_trace::stamp(t, tile_trace::handed);
    WorkTile* next_record = &records[(tiles_seen + 1) & 1u];  // the last tile's, which nothing reads any more
    const auto copy_next_record = [&] {
      if (next < num_tiles) copy_record(args.tiles[next], next_record, thread);
      cute::cp_async_fence();
    };
    // A dealt next tile's record comes in during this tile; a claimed one is taken as this tile's last
    // stage starts (experiment 103) and its record comes in during that stage.
    next = t + ctas;
    if (!claims_later) copy_next_record();
    const auto take_next = [&] {
      if (!claims_later) return;
      next = later_tiles.consumer_next();
      copy_next_record();
    };
    const auto start_next = [&] {
      if (next < num_tiles) copy_tile_q<kConsumerThreads, Element, D>(args, *next_record, q_data, thread);
      cute::cp_async_fence();
    };
    consume<Element, D>(args, to_output, t, records[tiles_seen & 1u], ring, q_data, stages, parked_stats, take_next, start_next);
    if (thread == 0) tile_trace::stamp(t, tile_trace::stored);
  }
  leave();
}

template <typename Element, int D>
void launch(const PartialArgs& args, Grid grid, cudaStream_t stream, std::uint32_t max_ctas) {
  using Shape = StreamShape<D>;
  static std::array<std::atomic<bool>, kMaxDevices> shared_bytes_allowed{};
  allow_shared_bytes(reinterpret_cast<const void*>(mma_sync_states_kernel<Element, D>), Shape::kSharedBytes, shared_bytes_allowed);
  std::uint32_t ctas = args.num_tiles;
  if (grid == Grid::persistent) ctas = std::min(ctas, static_cast<std::uint32_t>(multiprocessor_count() * Shape::kMinBlocksPerSm));
  if (grid == Grid::persistent && max_ctas != 0) ctas = std::min(ctas, max_ctas);
  if (ctas == 0) return;
  launch_kernel(mma_sync_states_kernel<Element, D>, dim3(ctas), dim3(kThreads), Shape::kSharedBytes, stream, args.mma_sync_chained != 0, args);
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
  tile_trace::note_launch(stream, args.num_tiles, ctas);
}

}  // namespace

#if CHUNKTREE_TILE_TRACE
void write_mma_sync_trace(cudaStream_t stream, bool keep) { tile_trace::write(stream, "", keep); }
void set_mma_sync_trace_stamping(cudaStream_t stream, bool on) { tile_trace::set_stamping(stream, on); }
#endif

void launch_mma_sync_states(bool bf16, int head_dim, const PartialArgs& args, Grid grid, cudaStream_t stream, std::uint32_t max_ctas) {
  with_element(bf16, [&]<typename Element>() {
    switch (head_dim) {
      case 64: return launch<Element, 64>(args, grid, stream, max_ctas);
      case 128: return launch<Element, 128>(args, grid, stream, max_ctas);
      case 256: return launch<Element, 256>(args, grid, stream, max_ctas);
    }
    throw Error(ErrorCode::unsupported, "cuda backend: head_dim " + std::to_string(head_dim) + " is not 64, 128 or 256");
  });
}

}  // namespace chunktree::kernels
