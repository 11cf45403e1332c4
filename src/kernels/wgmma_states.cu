// Partial states on wgmma tiles: 128 query rows per CTA, warp-specialised. Takes the wide items:
// shared spans whose rows × query tokens × GQA group exceed what a 64-row mma.sync tile holds,
// where the product is compute-bound and larger tiles halve the KV traffic from L2.
//
// A producer warpgroup streams the item's K and V 128 positions at a time (across its runs) into a
// three-stage ring in the swizzled layouts wgmma reads: a run segment of 64 positions that starts a
// half stage as TMA boxes issued by one thread (experiment 36), any other segment by cp.async; each
// stage completes on an mbarrier (the boxes' bytes and cp.async.mbarrier.arrive). Two consumer
// warpgroups of 64 rows each run S = Q·Kᵀ (wgmma, both operands in shared memory, N = 128), an
// online softmax on the accumulator registers and O += P·V (wgmma, P from registers, V read
// transposed). Each consumer issues step k's S beside step k−1's P·V and runs step k's softmax while
// that P·V is in flight; the two consumers take turns issuing (ping-pong), and a stage is released
// on a second mbarrier once its P·V is in. setmaxnreg gives the consumers 224 registers, the
// producer 56.
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "chunktree/types.hpp"
#include "runtime/check.cuh"
#include "kernels/kv_tensor_maps.cuh"
#include "kernels/launch_setup.cuh"
#include "kernels/partial_states.cuh"
#include "kernels/run_window.cuh"
#include "kernels/stage_copy.cuh"
#include "kernels/tile_trace.cuh"
#include "kernels/tiles.cuh"

#include <cute/arch/copy_sm90_desc.hpp>
#include <cute/arch/copy_sm90_tma.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/arch/reg_reconfig.h>

namespace chunktree::kernels {
namespace {

template <typename Element>
struct CuteType;
template <>
struct CuteType<__nv_bfloat16> {
  using type = cute::bfloat16_t;
};
template <>
struct CuteType<__half> {
  using type = cute::half_t;
};

template <typename A, typename C>
__device__ void fence_product_operands(A& a, C& c) {
  if constexpr (!cute::is_same_v<typename A::value_type, cute::GMMA::DescriptorIterator::value_type>) cute::warpgroup_fence_operand(a);
  cute::warpgroup_fence_operand(c);
}

// Issues one warpgroup product C (+)= A·B over all k blocks as one batch, without waiting for
// it: the caller waits with cute::warpgroup_wait<N>() (batches still in flight) and then fences
// the operands with fence_product_operands, so that no access to C (or to a register A) moves
// across the product.
template <bool Accumulate, typename Mma, typename A, typename B, typename C>
__device__ void issue_product(Mma& mma, A& a, const B& b, C& c) {
  fence_product_operands(a, c);
  cute::warpgroup_arrive();
  mma.accumulate_ = Accumulate ? cute::GMMA::ScaleOut::One : cute::GMMA::ScaleOut::Zero;
  CUTE_UNROLL
  for (int k = 0; k < cute::size<2>(a); ++k) {
    cute::gemm(mma, a(cute::_, cute::_, k), b(cute::_, cute::_, k), c);
    mma.accumulate_ = cute::GMMA::ScaleOut::One;
  }
  cute::warpgroup_commit_batch();
}

// The accumulator of a 64×N wgmma per thread is ((2, 2, N/8), M, N'): (column pair, row half,
// column block). As (row, column): ((2, M), (2, N/8, N')). Row r of a thread is
// 16·warp + lane/4 + 8·r; column c is 8·(c / 2) + 2·(lane % 4) + c % 2.
template <typename Layout>
__device__ auto rows_by_columns(Layout layout) {
  using cute::get;
  return cute::make_layout(cute::make_layout(get<0, 1>(layout), get<1>(layout)),
                           cute::make_layout(get<0, 0>(layout), get<0, 2>(layout), get<2>(layout)));
}

// The tile: 128 query rows, 128 KV positions per stage, three stages, three warpgroups (a producer,
// two consumers of 64 rows). Q [rows, D] and K [positions, D, stage] are K-major (D contiguous);
// V is stored [positions, D] too, seen as [D, positions, stage], the MN-major B operand of P·V.
template <typename Element, int D>
struct WgmmaTile {
  using T = typename CuteType<Element>::type;
  static constexpr int kHeadDim = D;
  static constexpr int kRows = kWgmmaTileRows;
  static constexpr int kTokens = kWgmmaStageTokens;
  static constexpr int kStages = 3;  // a stage is held from its S to its P·V, one step later
  static constexpr int kThreads = 384;
  static constexpr int kAlignment = 1024;
  static constexpr int kBarrierBytes = 2 * kStages * 8;
  static constexpr int kSharedBytes = (kRows + 2 * kStages * kTokens) * D * static_cast<int>(sizeof(T)) + kAlignment + kBarrierBytes;
  using QLayout = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<T>{}, cute::Shape<cute::Int<kRows>, cute::Int<D>>{}));
  using KLayout = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<T>{},
                                               cute::Shape<cute::Int<kTokens>, cute::Int<D>, cute::Int<kStages>>{}));
  // Positions first: each 64-element panel of a stage's V is one contiguous block of 128-byte rows,
  // as K's is, so that one TMA box fills 64 positions of a panel (experiment 36).
  using VtLayout = decltype(cute::tile_to_shape(cute::GMMA::Layout_MN_SW128_Atom<T>{},
                                                cute::Shape<cute::Int<D>, cute::Int<kTokens>, cute::Int<kStages>>{},
                                                cute::Step<cute::_2, cute::_1, cute::_3>{}));
  using ScoreMma = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<T, T, float, cute::Shape<cute::_64, cute::Int<kTokens>, cute::Int<D>>>(),
      cute::Layout<cute::Shape<cute::_2, cute::_1, cute::_1>>{}));
  using OutputMma = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<T, T, float, cute::Shape<cute::_64, cute::Int<D>, cute::Int<kTokens>>, cute::GMMA::Major::K,
                                 cute::GMMA::Major::MN>(),
      cute::Layout<cute::Shape<cute::_2, cute::_1, cute::_1>>{}));
};

// The consumers' ping-pong: each warpgroup issues its products only in its turn (its named
// barrier, which the other warpgroup's pass completes) and passes the turn on once they are
// issued, so that the two warpgroups' softmaxes alternate with their products instead of both
// waiting for the tensor cores at once (FlashAttention-3's inter-warpgroup overlap).
class ProductTurns {
 public:
  __device__ explicit ProductTurns(int warpgroup) : mine_(kFirstBarrier + warpgroup - 1), other_(kFirstBarrier + 2 - warpgroup) {}
  __device__ void take() const { cutlass::arch::NamedBarrier::sync(256, mine_); }
  __device__ void pass() const { cutlass::arch::NamedBarrier::arrive(256, other_); }

 private:
  static constexpr int kFirstBarrier = 3;  // 1 and 2 are the warpgroups' own (Q loaded)
  int mine_;
  int other_;
};

using FirstQueries = QueriesFirst<384, 5>;  // barrier 5: after ProductTurns'

// The rows of a run's part [begin, end) of the stage that starts at item position `first` that go as
// TMA boxes (64-row boxes, then 16-row ones): where the part starts on a swizzle period of the stage
// (8 rows) and its rows are the maps' rows.
__device__ inline int boxed_rows(int first, int begin, int end, bool boxable) {
  if (begin >= end || (begin - first) % 8 != 0 || !boxable) return 0;
  return (end - begin) / kBoxRows * kBoxRows + (end - begin) % kBoxRows / kShortBoxRows * kShortBoxRows;
}

constexpr auto kKvCacheHint = static_cast<std::uint64_t>(cute::TMA::CacheHintSm90::EVICT_NORMAL);

// Issues the boxes of `boxed` rows from stage row `row` on, whose K and V start at k_at and v_at.
template <typename Tile, typename KSmem, typename VtSmem>
__device__ void issue_boxes(const KvTensorMaps& maps, std::uint64_t* full, KSmem& k_smem, VtSmem& vt_smem, int stage, int row, BoxStart k_at,
                            BoxStart v_at, int boxed) {
  constexpr int D = Tile::kHeadDim;
  // The stage completes once these bytes land too (expected before this thread's own arrival, so
  // the phase cannot end first). The slot was last written by cp.async, the generic proxy: ordered
  // before the TMA's writes.
  cutlass::arch::fence_view_async_shared();
  cutlass::arch::ClusterTransactionBarrier::expect_transaction(full, 2 * boxed * D * sizeof(typename Tile::T));
  for (int done = 0; done < boxed;) {
    const bool long_box = boxed - done >= kBoxRows;
    CUTE_UNROLL
    for (int panel = 0; panel < D / kBoxElements; ++panel) {
      const int column = panel * kBoxElements;
      cute::SM90_TMA_LOAD_2D::copy(long_box ? &maps.k : &maps.k_short, full, kKvCacheHint, &k_smem(row + done, column, stage), k_at.column + column,
                                   k_at.row + done);
      cute::SM90_TMA_LOAD_2D::copy(long_box ? &maps.v : &maps.v_short, full, kKvCacheHint, &vt_smem(column, row + done, stage), v_at.column + column,
                                   v_at.row + done);
    }
    done += long_box ? kBoxRows : kShortBoxRows;
  }
}

// Issues a stage of whole pages, consecutive in the pool, as one 3-D box per 64 columns of K and of V
// (experiment 84), from the rows of its first page in the 2-D maps, k_at and v_at.
template <typename Tile, typename KSmem, typename VtSmem>
__device__ void issue_page_boxes(const KvTensorMaps& maps, std::uint64_t* full, KSmem& k_smem, VtSmem& vt_smem, int stage, BoxStart k_at,
                                 BoxStart v_at) {
  constexpr int D = Tile::kHeadDim;
  cutlass::arch::fence_view_async_shared();  // as in issue_boxes
  cutlass::arch::ClusterTransactionBarrier::expect_transaction(full, 2 * Tile::kTokens * D * sizeof(typename Tile::T));
  int k_page = 0, k_row = 0, v_page = 0, v_row = 0;
  maps.page_rows.fast_divmod(k_page, k_row, k_at.row);
  maps.page_rows.fast_divmod(v_page, v_row, v_at.row);
  CUTE_UNROLL
  for (int panel = 0; panel < D / kBoxElements; ++panel) {
    const int column = panel * kBoxElements;
    cute::SM90_TMA_LOAD_3D::copy(&maps.k_pages, full, kKvCacheHint, &k_smem(0, column, stage), k_at.column + column, k_row, k_page);
    cute::SM90_TMA_LOAD_3D::copy(&maps.v_pages, full, kKvCacheHint, &vt_smem(column, 0, stage), v_at.column + column, v_row, v_page);
  }
}

// The producer's wait for a stage's slot, taken once, just before the stage's first write to it:
// what can be worked out before that write (the window's loads of run records, which runs go as which
// boxes) is then off the ring's round trip, on which the consumers wait (experiment 84b).
class StageSlot {
 public:
  __device__ StageSlot(std::uint64_t* empty, int global_step, int stages)
      : empty_(empty), phase_((global_step / stages - 1) & 1), due_(global_step >= stages) {}
  __device__ void await() {
    if (due_) cutlass::arch::ClusterBarrier::wait(empty_, phase_);
    due_ = false;
  }

 private:
  std::uint64_t* empty_;
  int phase_;
  bool due_;
};

// Starts copying the stage of item positions [first, last) inside the item's first run, whose rows
// are the maps' rows from `rows` on (RunWindow::LeadRows): its boxes issued by thread 0 from uniform
// registers as soon as the slot frees (the refill of a released stage is on the consumers' path:
// experiment 79f), whatever is left by the warpgroup's cp.async.
template <typename Tile, typename Copy, typename Element, typename KSmem, typename VtSmem, typename KPiece, typename VPiece, typename LeadRows>
__device__ void copy_lead_stage(const PartialArgs& args, const KvTensorMaps& maps, LeadRows rows, KSmem& k_smem, VtSmem& vt_smem,
                                std::uint64_t* full, StageSlot& slot, KPiece k_piece, VPiece v_piece, int stage, int first, int last) {
  constexpr int D = Tile::kHeadDim;
  const int thread = static_cast<int>(threadIdx.x);
  const int boxed = boxed_rows(first, first, last, true);
  slot.await();
  if (thread == 0 && boxed > 0) issue_boxes<Tile>(maps, full, k_smem, vt_smem, stage, 0, BoxStart{0, rows.k + first}, BoxStart{0, rows.v + first}, boxed);
  const int rest = first + boxed;
  if (rest < last) {
    const auto rows_at = [&](std::uintptr_t base, std::int32_t row) {
      return reinterpret_cast<const Element*>(base + static_cast<std::uint64_t>(row + rest) * D * sizeof(Element));
    };
    copy_segment<Copy, Passes::loop_inside>(thread, k_piece, v_piece, rows_at(args.k_base, rows.k), rows_at(args.v_base, rows.v), D, boxed,
                                            last - rest);
  }
}

// Starts copying this lane's run's part of the stage of item positions [first, last) (stage row 0
// is position `first`; each lane of each producer warp holds the same run as its lane of the
// others): as TMA boxes issued by its lane of warp 0 where it can, and whatever is left by the
// warpgroup's cp.async, lane by lane in run order.
template <typename Tile, typename Copy, typename Element, typename KSmem, typename VtSmem, typename KPiece, typename VPiece>
__device__ void copy_stage_part(const PartialArgs& args, const KvTensorMaps& maps, const RunWindow<Element, Tile::kHeadDim>& run, KSmem& k_smem,
                                VtSmem& vt_smem, std::uint64_t* full, StageSlot& slot, KPiece k_piece, VPiece v_piece, int stage, int first,
                                int last) {
  const int thread = static_cast<int>(threadIdx.x);
  const int pages_lane = run.stage_pages_lane(maps, first, last);
  if (pages_lane >= 0) {
    slot.await();
    if (thread == pages_lane) issue_page_boxes<Tile>(maps, full, k_smem, vt_smem, stage, run.k_box(first), run.v_box(first));
    return;
  }
  const int begin = max(run.begin(), first);
  const int end = min(run.end(), last);
  const int boxed = boxed_rows(first, begin, end, run.boxed());
  slot.await();
  if (thread < 32 && boxed > 0) issue_boxes<Tile>(maps, full, k_smem, vt_smem, stage, begin - first, run.k_box(begin), run.v_box(begin), boxed);
  constexpr unsigned kAll = 0xffffffffu;
  const int rest = begin + boxed;
  for (unsigned lanes = __ballot_sync(kAll, rest < end); lanes != 0; lanes &= lanes - 1) {
    const int lane = __ffs(lanes) - 1;
    const int from = __shfl_sync(kAll, rest, lane);
    const auto k_rows = reinterpret_cast<const Element*>(args.k_base + __shfl_sync(kAll, run.k_from(rest), lane));
    const auto v_rows = reinterpret_cast<const Element*>(args.v_base + __shfl_sync(kAll, run.v_from(rest), lane));
    copy_segment<Copy, Passes::loop_inside>(thread, k_piece, v_piece, k_rows, v_rows, __shfl_sync(kAll, run.stride(), lane), from - first,
                                            __shfl_sync(kAll, end, lane) - from);
  }
}

template <typename Element, int D>
__global__ void __launch_bounds__(WgmmaTile<Element, D>::kThreads, 1) wgmma_states_kernel(const __grid_constant__ PartialArgs args,
                                                                                          const __grid_constant__ KvTensorMaps maps) {
  const tile_trace::Clock clock;  // a trace build's: this CTA's entry, stamped by consumer thread 0 as it leaves
  using Tile = WgmmaTile<Element, D>;
  using T = typename Tile::T;
  using namespace cute;
  extern __shared__ unsigned char shared_bytes[];
  auto* base = reinterpret_cast<T*>((reinterpret_cast<std::uintptr_t>(shared_bytes) + Tile::kAlignment - 1) &
                                    ~static_cast<std::uintptr_t>(Tile::kAlignment - 1));
  T* k_base = base + Tile::kRows * D;
  T* v_base = k_base + Tile::kStages * Tile::kTokens * D;
  auto* full = reinterpret_cast<std::uint64_t*>(v_base + Tile::kStages * Tile::kTokens * D);  // producer → consumers
  std::uint64_t* empty = full + Tile::kStages;                                                 // consumers → producer
  Tensor q_smem = make_tensor(make_smem_ptr(base), typename Tile::QLayout{});
  Tensor k_smem = make_tensor(make_smem_ptr(k_base), typename Tile::KLayout{});
  Tensor vt_smem = make_tensor(make_smem_ptr(v_base), typename Tile::VtLayout{});

  const int warpgroup = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    for (int s = 0; s < Tile::kStages; ++s) {
      cutlass::arch::ClusterBarrier::init(&full[s], 128);
      cutlass::arch::ClusterBarrier::init(&empty[s], 256);
    }
  }
  tile_trace::begin();  // a trace build's flag, read once a CTA
  cutlass::arch::fence_barrier_init();
  __syncthreads();

  // This CTA's tiles: blockIdx.x, then every ctas-th (one per CTA unless the grid is persistent).
  // A replayed launch's CTAs past the live plan's working ones exit at once, leaving their SMs to the
  // mma.sync tiles (experiment 95). Steps count on across tiles: step g uses stage g % kStages in
  // phase g / kStages.
  const std::uint32_t ctas = working_ctas(args);
  if (blockIdx.x >= ctas) {
    if (threadIdx.x == 128) clock.left(blockIdx.x);
    return;
  }
  if (args.mma_sync_chained != 0) let_chained_kernel_start();  // this SM is held: the mma.sync grid may fill the rest
  const std::uint32_t num_tiles = tile_count(args);
  const auto tile_steps = [&](const work::Item& item) { return static_cast<int>((item.tokens + Tile::kTokens - 1) / Tile::kTokens); };
  if (warpgroup == 0) {
    // Producer: the item's tokens 128 at a time, across runs; rows past the item are zeros. This
    // thread's pieces of a stage are a fixed number of elements apart in the swizzled layouts
    // (the swizzle depends on the row modulo 8, and a pass moves 8 or 16 rows), so they are read
    // off the layouts once, here.
    cutlass::arch::warpgroup_reg_dealloc<56>();
    using Copy = StageCopy<D, Tile::kTokens, 128>;
    static_assert(Copy::kRowsPerPass % 8 == 0);
    const int thread = static_cast<int>(threadIdx.x);
    const int row0 = Copy::first_row(thread);
    const int column = 8 * Copy::piece(thread);
    T* const k_at = &k_smem(row0, column, 0);
    T* const v_at = &vt_smem(column, row0, 0);
    auto* const k_first = reinterpret_cast<Element*>(k_at);
    auto* const v_first = reinterpret_cast<Element*>(v_at);
    const auto k_pass = static_cast<int>(&k_smem(row0 + Copy::kRowsPerPass, column, 0) - k_at);
    const auto v_pass = static_cast<int>(&vt_smem(column, row0 + Copy::kRowsPerPass, 0) - v_at);
    const auto k_stage = static_cast<int>(&k_smem(row0, column, 1) - k_at);
    const auto v_stage = static_cast<int>(&vt_smem(column, row0, 1) - v_at);
    int steps_before = 0;
    for (std::uint32_t tile = blockIdx.x; tile < num_tiles; tile += ctas) {
      if (threadIdx.x == 0) tile_trace::stamp(tile, tile_trace::taken);
      const WorkTile work = args.tiles[tile];
      const work::Item& item = work.item;
      const int steps = tile_steps(item);
      RunWindow<Element, D> window(args, maps, work);
      for (int step = 0; step < steps; ++step) {
        const int global_step = steps_before + step;
        const int stage = global_step % Tile::kStages;
        StageSlot slot(&empty[stage], global_step, Tile::kStages);
        const auto k_piece = [&](int j, int, int) { return k_first + stage * k_stage + j * k_pass; };
        const auto v_piece = [&](int j, int, int) { return v_first + stage * v_stage + j * v_pass; };
        const int first = step * Tile::kTokens;
        const int tokens = static_cast<int>(min<std::int64_t>(Tile::kTokens, item.tokens - first));
        window.for_stage(
            maps, first, first + tokens,
            [&](auto rows) {
              copy_lead_stage<Tile, Copy, Element>(args, maps, rows, k_smem, vt_smem, &full[stage], slot, k_piece, v_piece, stage, first, first + tokens);
            },
            [&] {
              copy_stage_part<Tile, Copy>(args, maps, window, k_smem, vt_smem, &full[stage], slot, k_piece, v_piece, stage, first, first + tokens);
            });
        slot.await();  // taken already by the stage's copies
        zero_rows<Copy>(thread, k_piece, v_piece, args.q, tokens, Tile::kTokens);  // wgmma reads all 128 positions
        cutlass::arch::cpasync_barrier_arrive_noinc(&full[stage]);
        if (tile == blockIdx.x && step == 0) FirstQueries::await();
      }
      if (tile == blockIdx.x && steps == 0) FirstQueries::await();  // a first tile without steps: the barrier still completes
      steps_before += steps;
    }
    let_chained_kernel_start();  // every copy of this CTA is issued
    return;
  }

  // Consumers: warpgroup 1 takes query rows 0-63 of the tile, warpgroup 2 rows 64-127.
  cutlass::arch::warpgroup_reg_alloc<224>();
  const int consumer = threadIdx.x - 128;
  const ProductTurns turns(warpgroup);
  if (warpgroup == 2) turns.pass();  // warpgroup 1 issues first
  const int lane = threadIdx.x % 32;
  const int thread_row0 = (consumer / 32) * 16 + lane / 4;
  const bool to_output = writes_output(args);  // a global load in replayed launches: asked once, not after the mainloop
  int steps_before = 0;
  for (std::uint32_t tile = blockIdx.x; tile < num_tiles; tile += ctas) {
    const WorkTile work = args.tiles[tile];
    const work::Item& item = work.item;
    const int steps = tile_steps(item);
    const int query_rows = static_cast<int>(item.row_end - item.row_begin) * args.queries * args.group;
    const int tile_rows = min(Tile::kRows, query_rows - static_cast<int>(work.m_begin));
    for (int index = consumer % 128; index < 64 * (D / 8); index += 128) {
      const int r = (warpgroup - 1) * 64 + index / (D / 8);
      const int piece = index % (D / 8);
      const bool valid = r < tile_rows;
      const Element* row = QueryRow(args, work, static_cast<int>(work.m_begin) + (valid ? r : 0)).template q<Element, D>(args, work);
      SM80_CP_ASYNC_CACHEGLOBAL_ZFILL<uint128_t>::copy(*reinterpret_cast<const uint128_t*>(row + 8 * piece),
                                                       *reinterpret_cast<uint128_t*>(&q_smem(r, 8 * piece)), valid);
    }
    cp_async_fence();
    if (tile == blockIdx.x) FirstQueries::issued();
    cp_async_wait<0>();
    cutlass::arch::fence_view_async_shared();
    cutlass::arch::NamedBarrier::sync(128, warpgroup);  // this warpgroup's Q rows have landed
    if (consumer == 0) tile_trace::stamp(tile, tile_trace::handed);

    int limit[2] = {INT_MAX, INT_MAX};
    if (item.causal != 0) {
      for (int r = 0; r < 2; ++r) {
        const int m = static_cast<int>(work.m_begin) + thread_row0 + 8 * r;
        if (m < query_rows) limit[r] = QueryRow(args, work, m).limit(args, work);
      }
    }
    typename Tile::ScoreMma score_mma;
    typename Tile::OutputMma output_mma;
    auto score_thread = score_mma.get_thread_slice(consumer);
    auto output_thread = output_mma.get_thread_slice(consumer);
    Tensor q_frag = score_thread.partition_fragment_A(q_smem);
    Tensor k_frag = score_thread.partition_fragment_B(k_smem);
    Tensor vt_frag = output_thread.partition_fragment_B(vt_smem);
    Tensor o = partition_fragment_C(output_mma, Shape<Int<Tile::kRows>, Int<D>>{});
    clear(o);
    Tensor o_rc = make_tensor(o.data(), rows_by_columns(o.layout()));
    OnlineSoftmax rows[2];
    const int first_position = work.first_run.position;
    const auto stage_of = [&](int step) { return (steps_before + step) % Tile::kStages; };

    // Softmax of step `step` on its scores s (raw, masked here): folds each row's maximum in and
    // turns s into exp2 of the scaled scores. Returns in `rescale` the factor for what O held before.
    // A positive scale (every caller's 1/√d) is folded into the exponent, one FFMA per score:
    // max(s) · scale is then the scaled maximum (experiment 28). A negative one, which the API
    // allows (0 asks for 1/√d before it reaches here), scales the scores first.
    const bool folded = args.scale_log2 > 0.0f;
    const float exponent_scale = folded ? args.scale_log2 : 1.0f;
    const auto softmax = [&](int step, auto& s_rc, float (&rescale)[2]) {
      const int tokens = static_cast<int>(min<std::int64_t>(Tile::kTokens, item.tokens - static_cast<std::int64_t>(step) * Tile::kTokens));
      const int position = first_position + step * Tile::kTokens;
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) {
        // Columns past the item's end or the row's causal limit are masked; a step that the row
        // sees whole (every step but an item's last, outside causal limits) skips the mask's
        // compare and select per score (experiment 27).
        const int last_visible = min(tokens - 1, limit[r] - position);
        if (!folded) {
          CUTE_UNROLL
          for (int c = 0; c < size<1>(s_rc); ++c) s_rc(r, c) *= args.scale_log2;
        }
        if (last_visible < Tile::kTokens - 1) {
          CUTE_UNROLL
          for (int c = 0; c < size<1>(s_rc); ++c) {
            if (8 * (c / 2) + 2 * (lane % 4) + c % 2 > last_visible) s_rc(r, c) = -INFINITY;
          }
        }
      }
      // Both rows' reductions run as balanced trees, side by side: a chain of 32 dependent
      // FMNMX (the row maximum) and 32 FADD (the row sum) per row was the softmax's critical path
      // (experiment 33). The trees read a plain array, which stays in registers.
      constexpr int kRowScores = size<1>(decltype(s_rc.layout()){});
      float row_scores[2][kRowScores];
      const auto copy_rows = [&] {
        CUTE_UNROLL
        for (int r = 0; r < 2; ++r) {
          CUTE_UNROLL
          for (int c = 0; c < kRowScores; ++c) row_scores[r][c] = s_rc(r, c);
        }
      };
      copy_rows();
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) {
        const float tile_max = tiles::tree_reduce<0, kRowScores>(row_scores[r], [](float a, float b) { return fmaxf(a, b); });
        rescale[r] = rows[r].fold(tiles::row_max(tile_max) * exponent_scale);
      }
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) {
        const float reference = rows[r].reference();
        CUTE_UNROLL
        for (int c = 0; c < kRowScores; ++c) s_rc(r, c) = exp2f(fmaf(s_rc(r, c), exponent_scale, -reference));
      }
      copy_rows();
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) rows[r].sum += tiles::tree_reduce<0, kRowScores>(row_scores[r], [](float a, float b) { return a + b; });
    };

    // Step k issues S(k) = Q·K(k) and, beside it, O += P(k−1)·V(k−1), then runs softmax(k) while
    // P(k−1)·V(k−1) is still on the tensor cores; the two warpgroups take turns issuing (ping-pong),
    // so that one's softmax runs while the other's products do. A stage is released once its P·V
    // is in, one step after its S.
    Tensor s = partition_fragment_C(score_mma, Shape<Int<Tile::kRows>, Int<Tile::kTokens>>{});
    Tensor s_rc = make_tensor(s.data(), rows_by_columns(s.layout()));
    Tensor p = make_tensor_like<T>(s);
    Tensor p_a = make_tensor(p.data(), make_layout(make_shape(make_shape(_2{}, _2{}, _2{}), _1{}, Int<Tile::kTokens / 16>{}),
                                                   make_stride(make_stride(_1{}, _2{}, _4{}), _0{}, _8{})));
    float rescale[2];
    const auto wait_for_stage = [&](int step) {
      cutlass::arch::ClusterBarrier::wait(&full[stage_of(step)], ((steps_before + step) / Tile::kStages) & 1);
      cutlass::arch::fence_view_async_shared();  // cp.async wrote the stage; wgmma reads it through the async proxy
    };
    const auto rescale_and_convert = [&] {
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) {
        CUTE_UNROLL
        for (int c = 0; c < size<1>(o_rc); ++c) o_rc(r, c) *= rescale[r];
      }
      CUTE_UNROLL
      for (int i = 0; i < size(s); ++i) p(i) = static_cast<T>(s(i));
    };
    const auto accumulated = [&](int step) {  // P(step)·V(step) is in: its stage is free
      fence_product_operands(p_a, o);
      cutlass::arch::ClusterBarrier::arrive(&empty[stage_of(step)]);
    };

    if (steps > 0) {  // both warpgroups take the same turns: they share the tile
      wait_for_stage(0);
      if (consumer == 0) tile_trace::stamp(tile, tile_trace::first_stage);
      turns.take();
      issue_product<false>(score_mma, q_frag, k_frag(_, _, _, stage_of(0)), s);
      turns.pass();
      cute::warpgroup_wait<0>();
      fence_product_operands(q_frag, s);
      softmax(0, s_rc, rescale);
      rescale_and_convert();
      for (int step = 1; step < steps; ++step) {
        wait_for_stage(step);
        turns.take();
        issue_product<false>(score_mma, q_frag, k_frag(_, _, _, stage_of(step)), s);
        issue_product<true>(output_mma, p_a, vt_frag(_, _, _, stage_of(step - 1)), o);
        turns.pass();
        cute::warpgroup_wait<1>();
        fence_product_operands(q_frag, s);
        softmax(step, s_rc, rescale);
        cute::warpgroup_wait<0>();
        accumulated(step - 1);
        rescale_and_convert();
      }
      turns.take();
      issue_product<true>(output_mma, p_a, vt_frag(_, _, _, stage_of(steps - 1)), o);
      turns.pass();
      cute::warpgroup_wait<0>();
      if (consumer == 0) tile_trace::stamp(tile, tile_trace::stages_done);
      accumulated(steps - 1);
    }
    if (consumer == 0) tile_trace::stamp(tile, tile_trace::combined);

    CUTE_UNROLL
    for (int r = 0; r < 2; ++r) {
      const float sum = tiles::row_sum(rows[r].sum);
      const int m = static_cast<int>(work.m_begin) + thread_row0 + 8 * r;
      if (m >= query_rows) continue;
      store_state<D>(args, work, QueryRow(args, work, m), to_output, rows[r].max, sum,
                     [&](int j) { return make_float2(o_rc(r, 2 * j), o_rc(r, 2 * j + 1)); });
    }
    if (consumer == 0) tile_trace::stamp(tile, tile_trace::stored);
    steps_before += steps;
  }
  if (warpgroup == 1) turns.take();  // warpgroup 2's last pass, so that no arrival is left pending at exit
  if (consumer == 0) clock.left(blockIdx.x);
}

template <typename Element, int D>
void launch(const PartialArgs& args, Grid grid, cudaStream_t stream, std::uint32_t max_ctas) {
  using Tile = WgmmaTile<Element, D>;
  static std::array<std::atomic<bool>, kMaxDevices> shared_bytes_allowed{};
  allow_shared_bytes(reinterpret_cast<const void*>(wgmma_states_kernel<Element, D>), Tile::kSharedBytes, shared_bytes_allowed);
  std::uint32_t ctas = args.num_tiles;
  if (grid == Grid::persistent) ctas = std::min(ctas, static_cast<std::uint32_t>(multiprocessor_count()));  // one CTA per SM fits
  if (grid == Grid::persistent && max_ctas != 0) ctas = std::min(ctas, max_ctas);
  if (ctas == 0) return;
  wgmma_states_kernel<Element, D><<<ctas, Tile::kThreads, Tile::kSharedBytes, stream>>>(
      args, kv_maps<Element, D>(args.k_base, args.v_base, args.token_stride, args.page_stride, args.page_tokens));
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
  tile_trace::note_launch(stream, args.num_tiles, ctas);
}

}  // namespace

#if CHUNKTREE_TILE_TRACE
void write_wgmma_trace(cudaStream_t stream, bool keep) { tile_trace::write(stream, ".wgmma", keep); }
void set_wgmma_trace_stamping(cudaStream_t stream, bool on) { tile_trace::set_stamping(stream, on); }
#endif

void launch_wgmma_states(bool bf16, int head_dim, const PartialArgs& args, Grid grid, cudaStream_t stream, std::uint32_t max_ctas) {
  with_element(bf16, [&]<typename Element>() {
    switch (head_dim) {
      case 64: return launch<Element, 64>(args, grid, stream, max_ctas);
      case 128: return launch<Element, 128>(args, grid, stream, max_ctas);
    }
    throw Error(ErrorCode::unsupported, "cuda backend: the wgmma kernel has no head_dim " + std::to_string(head_dim));
  });
}

}  // namespace chunktree::kernels
