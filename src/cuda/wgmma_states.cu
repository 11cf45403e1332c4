// Partial states on wgmma tiles: 128 query rows per CTA, two warpgroups of 64 rows, 64 KV
// positions per step, a cp.async ring of K/V stages in the swizzled layouts wgmma reads.
// Takes the wide items: shared spans whose rows × GQA group exceed what a 64-row mma.sync tile
// holds, where the product is compute-bound and larger tiles halve the KV traffic from L2.
//
// Per step and warpgroup: S = Q·Kᵀ (wgmma, both operands in shared memory), an online softmax on
// the accumulator registers, O += P·V (wgmma, P from registers, V read transposed from shared
// memory). Two CTAs share an SM, so one's softmax overlaps the other's products.
#include <climits>
#include <cmath>
#include <string>

#include "chunktree/types.hpp"
#include "cuda/check.cuh"
#include "cuda/partial_states.cuh"

#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>

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

template <typename Element, int D>
struct WgmmaTile {
  using T = typename CuteType<Element>::type;
  static constexpr int kRows = 128;  // query rows: two warpgroups × 64
  static constexpr int kTokens = 64;  // KV positions per step
  static constexpr int kStages = 2;  // with 64 positions: two CTAs per SM (docs/KERNEL_NOTES.md, experiment 6)
  static constexpr int kThreads = 256;
  static constexpr int kAlignment = 1024;  // of a 128-byte-swizzle atom (8 rows × 128 bytes)
  static constexpr int kSharedBytes = (kRows + 2 * kStages * kTokens) * D * static_cast<int>(sizeof(T)) + kAlignment;

  // Q [rows, D] and K [positions, D, stage] are K-major (D contiguous); V is stored [positions, D]
  // too, seen as [D, positions, stage], the MN-major B operand of P·V.
  using QLayout = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<T>{}, cute::Shape<cute::Int<kRows>, cute::Int<D>>{}));
  using KLayout = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<T>{},
                                               cute::Shape<cute::Int<kTokens>, cute::Int<D>, cute::Int<kStages>>{}));
  using VtLayout = decltype(cute::tile_to_shape(cute::GMMA::Layout_MN_SW128_Atom<T>{},
                                                cute::Shape<cute::Int<D>, cute::Int<kTokens>, cute::Int<kStages>>{}));
  using ScoreMma = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<T, T, float, cute::Shape<cute::_64, cute::Int<kTokens>, cute::Int<D>>>(),
      cute::Layout<cute::Shape<cute::_2, cute::_1, cute::_1>>{}));
  using OutputMma = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<T, T, float, cute::Shape<cute::_64, cute::Int<D>, cute::Int<kTokens>>, cute::GMMA::Major::K,
                                 cute::GMMA::Major::MN>(),
      cute::Layout<cute::Shape<cute::_2, cute::_1, cute::_1>>{}));
};

// One warpgroup product C (+)= A·B over all k blocks, waited for. A register A operand (rather
// than shared-memory descriptors) is fenced too, so that no write to it moves past the read.
template <bool Accumulate, typename Mma, typename A, typename B, typename C>
__device__ void warpgroup_product(Mma& mma, A& a, const B& b, C& c) {
  constexpr bool kRegisterA = !cute::is_same_v<typename A::value_type, cute::GMMA::DescriptorIterator::value_type>;
  if constexpr (kRegisterA) cute::warpgroup_fence_operand(a);
  cute::warpgroup_fence_operand(c);
  cute::warpgroup_arrive();
  mma.accumulate_ = Accumulate ? cute::GMMA::ScaleOut::One : cute::GMMA::ScaleOut::Zero;
  CUTE_UNROLL
  for (int k = 0; k < cute::size<2>(a); ++k) {
    cute::gemm(mma, a(cute::_, cute::_, k), b(cute::_, cute::_, k), c);
    mma.accumulate_ = cute::GMMA::ScaleOut::One;
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  cute::warpgroup_fence_operand(c);
  if constexpr (kRegisterA) cute::warpgroup_fence_operand(a);
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

template <typename Element, int D>
__global__ void __launch_bounds__(WgmmaTile<Element, D>::kThreads, 2) wgmma_states_kernel(const PartialArgs args) {
  using Tile = WgmmaTile<Element, D>;
  using T = typename Tile::T;
  using namespace cute;
  extern __shared__ unsigned char shared_bytes[];
  auto* base = reinterpret_cast<T*>((reinterpret_cast<std::uintptr_t>(shared_bytes) + Tile::kAlignment - 1) &
                                    ~static_cast<std::uintptr_t>(Tile::kAlignment - 1));
  Tensor q_smem = make_tensor(make_smem_ptr(base), typename Tile::QLayout{});
  Tensor k_smem = make_tensor(make_smem_ptr(base + Tile::kRows * D), typename Tile::KLayout{});
  Tensor vt_smem = make_tensor(make_smem_ptr(base + (Tile::kRows + Tile::kStages * Tile::kTokens) * D), typename Tile::VtLayout{});

  const WorkTile work = args.tiles[blockIdx.x];
  const work::Item item = args.items[work.item];
  const int query_rows = static_cast<int>(item.row_end - item.row_begin) * args.queries * args.group;
  const int tile_rows = min(Tile::kRows, query_rows - static_cast<int>(work.m_begin));
  const int lane = threadIdx.x % 32;
  const int thread_row0 = (threadIdx.x / 32) * 16 + lane / 4;  // warpgroup · 64 + warp · 16 + lane / 4
  // The causal limit of this thread's two rows (rows past the tile see everything; never stored).
  int limit[2] = {INT_MAX, INT_MAX};
  if (item.causal != 0) {
    for (int r = 0; r < 2; ++r) {
      const int m = static_cast<int>(work.m_begin) + thread_row0 + 8 * r;
      if (m < query_rows) limit[r] = QueryRow(args, item, work, m).limit(args);
    }
  }

  copy_rows_async<Tile::kThreads, D>(
      tile_rows, Tile::kRows, [&](int r, int c) { return &q_smem(r, 8 * c); },
      [&](int r) { return QueryRow(args, item, work, static_cast<int>(work.m_begin) + r).template q<Element, D>(args); });

  // Every position of a step is filled (zeros past the run): masked scores give P = 0, and
  // 0 · V must not meet stale NaNs.
  auto copy_step = [&](const KvWalk<Tile::kTokens>& walk, int stage) {
    const int tokens = walk.tokens();
    const std::int64_t stride = walk.run.token_stride;
    const Element* k_rows = walk.template rows<Element>(args.k_base, walk.run.k_offset, static_cast<int>(work.kv_head));
    const Element* v_rows = walk.template rows<Element>(args.v_base, walk.run.v_offset, static_cast<int>(work.kv_head));
    copy_rows_async<Tile::kThreads, D>(
        tokens, Tile::kTokens, [&](int t, int c) { return &k_smem(t, 8 * c, stage); }, [&](int t) { return k_rows + t * stride; });
    copy_rows_async<Tile::kThreads, D>(
        tokens, Tile::kTokens, [&](int t, int c) { return &vt_smem(8 * c, t, stage); }, [&](int t) { return v_rows + t * stride; });
  };

  KvWalk<Tile::kTokens> walk(args.runs, item);
  KvWalk<Tile::kTokens> load_walk = walk;
  CUTE_UNROLL
  for (int stage = 0; stage < Tile::kStages - 1; ++stage) {
    if (!load_walk.done()) {
      copy_step(load_walk, stage);
      load_walk.advance();
    }
    cp_async_fence();
  }

  typename Tile::ScoreMma score_mma;
  typename Tile::OutputMma output_mma;
  auto score_thread = score_mma.get_thread_slice(threadIdx.x);
  auto output_thread = output_mma.get_thread_slice(threadIdx.x);
  Tensor q_frag = score_thread.partition_fragment_A(q_smem);    // descriptors
  Tensor k_frag = score_thread.partition_fragment_B(k_smem);    // (MMA, N, K, stage) descriptors
  Tensor vt_frag = output_thread.partition_fragment_B(vt_smem);  // (MMA, N, K, stage) descriptors
  Tensor o = partition_fragment_C(output_mma, Shape<Int<Tile::kRows>, Int<D>>{});
  clear(o);
  Tensor o_rc = make_tensor(o.data(), rows_by_columns(o.layout()));

  float running_max[2] = {-INFINITY, -INFINITY};  // log2 domain
  float running_sum[2] = {0.0f, 0.0f};            // this thread's columns; reduced at the end

  for (int step = 0; !walk.done(); ++step) {
    const int stage = step % Tile::kStages;
    const int tokens = walk.tokens();
    const int position = walk.position();
    if (!load_walk.done()) {
      copy_step(load_walk, (step + Tile::kStages - 1) % Tile::kStages);
      load_walk.advance();
    }
    cp_async_fence();
    cp_async_wait<Tile::kStages - 1>();  // this step's K and V (and Q) have landed
    cutlass::arch::fence_view_async_shared();  // cp.async wrote them; wgmma reads through the async proxy
    __syncthreads();

    Tensor s = partition_fragment_C(score_mma, Shape<Int<Tile::kRows>, Int<Tile::kTokens>>{});
    warpgroup_product<false>(score_mma, q_frag, k_frag(_, _, _, stage), s);
    Tensor s_rc = make_tensor(s.data(), rows_by_columns(s.layout()));

    // Online softmax: scale, mask positions past the run (and past the causal limit), rescale
    // what came before.
    CUTE_UNROLL
    for (int r = 0; r < 2; ++r) {
      float tile_max = -INFINITY;
      const int last_visible = min(tokens - 1, limit[r] - position);  // column index; no overflow from INT_MAX
      CUTE_UNROLL
      for (int c = 0; c < size<1>(s_rc); ++c) {
        const int column = 8 * (c / 2) + 2 * (lane % 4) + c % 2;
        s_rc(r, c) = column <= last_visible ? s_rc(r, c) * args.scale_log2 : -INFINITY;
        tile_max = fmaxf(tile_max, s_rc(r, c));
      }
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(running_max[r], tile_max);
      // -inf: no visible position so far (causal rows): subtracting 0 keeps exp2 at 0, not NaN.
      const float reference = new_max == -INFINITY ? 0.0f : new_max;
      const float rescale = exp2f(running_max[r] - reference);
      running_max[r] = new_max;
      running_sum[r] *= rescale;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(o_rc); ++c) o_rc(r, c) *= rescale;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(s_rc); ++c) {
        s_rc(r, c) = exp2f(s_rc(r, c) - reference);
        running_sum[r] += s_rc(r, c);
      }
    }

    // P in the A-operand register layout of the next product: ((2, 2, 2), M, K/16), i.e. the
    // accumulator's column blocks taken two at a time.
    Tensor p = make_tensor_like<T>(s);
    CUTE_UNROLL
    for (int i = 0; i < size(s); ++i) p(i) = static_cast<T>(s(i));
    Tensor p_a = make_tensor(p.data(), make_layout(make_shape(make_shape(_2{}, _2{}, _2{}), _1{}, Int<Tile::kTokens / 16>{}),
                                                   make_stride(make_stride(_1{}, _2{}, _4{}), _0{}, _8{})));
    warpgroup_product<true>(output_mma, p_a, vt_frag(_, _, _, stage), o);

    __syncthreads();  // every warpgroup is done with this stage before a later copy refills it
    walk.advance();
  }

  CUTE_UNROLL
  for (int r = 0; r < 2; ++r) {
    float sum = running_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int m = static_cast<int>(work.m_begin) + thread_row0 + 8 * r;
    if (m >= query_rows) continue;
    store_state<D>(args, item, QueryRow(args, item, work, m), running_max[r], sum,
                   [&](int j) { return make_float2(o_rc(r, 2 * j), o_rc(r, 2 * j + 1)); });
  }
}

template <typename Element, int D>
void launch(const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream) {
  using Tile = WgmmaTile<Element, D>;
  // Per launch, not once per process: the limit belongs to the current device.
  CHUNKTREE_CUDA_CHECK(
      cudaFuncSetAttribute(wgmma_states_kernel<Element, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, Tile::kSharedBytes));
  wgmma_states_kernel<Element, D><<<tiles, Tile::kThreads, Tile::kSharedBytes, stream>>>(args);
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_wgmma_states(bool bf16, int head_dim, const PartialArgs& args, std::uint32_t tiles, cudaStream_t stream) {
  with_element(bf16, [&]<typename Element>() {
    switch (head_dim) {
      case 64: return launch<Element, 64>(args, tiles, stream);
      case 128: return launch<Element, 128>(args, tiles, stream);
    }
    throw Error(ErrorCode::unsupported, "cuda backend: the wgmma kernel has no head_dim " + std::to_string(head_dim));
  });
}

}  // namespace chunktree::kernels
