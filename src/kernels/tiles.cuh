// Typed tiles for the attention kernels: a swizzled shared-memory tile of 16-bit elements and
// the register fragments of the m16n8k16 tensor-core product, with CuTe's ldmatrix and mma
// atoms underneath. One warp owns 16 rows of a tile.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include <cute/arch/copy_sm75.hpp>
#include <cute/arch/mma_sm80.hpp>

namespace chunktree::tiles {

template <typename Element>
struct ElementTraits;

template <>
struct ElementTraits<__nv_bfloat16> {
  using Mma = cute::SM80_16x8x16_F32BF16BF16F32_TN;
  __device__ static std::uint32_t pack(float low, float high) {
    const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
    return *reinterpret_cast<const std::uint32_t*>(&pair);
  }
};

template <>
struct ElementTraits<__half> {
  using Mma = cute::SM80_16x8x16_F32F16F16F32_TN;
  __device__ static std::uint32_t pack(float low, float high) {
    const __half2 pair = __floats2half2_rn(low, high);
    return *reinterpret_cast<const std::uint32_t*>(&pair);
  }
};

// A [Rows][Dim] tile of 16-bit elements in shared memory. Rows are split into 16-byte chunks
// whose order is XOR-swizzled by the row, so that the 8 rows one ldmatrix reads at the same
// logical column hit 8 different bank groups.
template <typename Element, int Rows, int Dim>
struct SharedTile {
  static_assert(Dim % 64 == 0, "the swizzle needs at least 8 chunks of 16 bytes per row");
  static constexpr int kChunksPerRow = Dim / 8;
  static constexpr int kElements = Rows * Dim;

  Element* data;

  __device__ Element* chunk(int row, int chunk_index) const {
    return data + row * Dim + ((chunk_index ^ (row & 7)) << 3);
  }
  __device__ const cute::uint128_t& chunk_ref(int row, int chunk_index) const {
    return *reinterpret_cast<const cute::uint128_t*>(chunk(row, chunk_index));
  }
};

// Accumulator fragment of a 16×8 fp32 tile: lane holds rows lane/4 and lane/4 + 8, columns
// 2·(lane%4) and 2·(lane%4) + 1; element e is at row lane/4 + 8·(e/2), column 2·(lane%4) + e%2.
using Accumulator = float[4];

// A operand (16×16): registers for (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
// (rows 8-15, k 8-15) of the warp's rows, from a row-major tile.
template <typename Tile>
__device__ void load_a(const Tile& tile, int row0, int k_chunk, std::uint32_t (&a)[4]) {
  const int lane = threadIdx.x % 32;
  cute::SM75_U32x4_LDSM_N::copy(tile.chunk_ref(row0 + lane % 16, k_chunk + lane / 16), a[0], a[1], a[2], a[3]);
}

// B operands of two 8-column blocks from a tile stored [n][k] (K for Q·Kᵀ): b[0..1] feed
// columns n0..n0+7, b[2..3] columns n0+8..n0+15, over k chunk pair (k_chunk, k_chunk+1).
template <typename Tile>
__device__ void load_b_nk(const Tile& tile, int n0, int k_chunk, std::uint32_t (&b)[4]) {
  const int lane = threadIdx.x % 32;
  cute::SM75_U32x4_LDSM_N::copy(tile.chunk_ref(n0 + (lane / 16) * 8 + lane % 8, k_chunk + (lane / 8) % 2), b[0], b[1], b[2],
                                b[3]);
}

// B operands of two 8-column blocks from a tile stored [k][n] (V for P·V), transposed on load:
// b[0..1] feed columns chunk n_chunk, b[2..3] chunk n_chunk+1, over k rows k0..k0+15.
template <typename Tile>
__device__ void load_b_kn(const Tile& tile, int k0, int n_chunk, std::uint32_t (&b)[4]) {
  const int lane = threadIdx.x % 32;
  cute::SM75_U16x8_LDSM_T::copy(tile.chunk_ref(k0 + lane % 8 + ((lane / 8) % 2) * 8, n_chunk + lane / 16), b[0], b[1], b[2],
                                b[3]);
}

template <typename Element>
__device__ void mma(Accumulator& c, const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  ElementTraits<Element>::Mma::fma(c[0], c[1], c[2], c[3], a[0], a[1], a[2], a[3], b0, b1, c[0], c[1], c[2], c[3]);
}

// The A operand over k = 16 columns made of two accumulator blocks (the softmax's P).
template <typename Element>
__device__ void accumulators_to_a(const Accumulator& left, const Accumulator& right, std::uint32_t (&a)[4]) {
  a[0] = ElementTraits<Element>::pack(left[0], left[1]);
  a[1] = ElementTraits<Element>::pack(left[2], left[3]);
  a[2] = ElementTraits<Element>::pack(right[0], right[1]);
  a[3] = ElementTraits<Element>::pack(right[2], right[3]);
}

// The reduction of values[Begin .. Begin + N) (N a power of two) as a balanced tree: log2(N)
// dependent steps where a running fold takes N − 1.
template <int Begin, int N, int M, typename Op>
__device__ __forceinline__ float tree_reduce(const float (&values)[M], Op op) {
  static_assert(N > 0 && (N & (N - 1)) == 0 && Begin + N <= M, "tree_reduce takes a power of two of values");
  if constexpr (N == 1) {
    return values[Begin];
  } else {
    return op(tree_reduce<Begin, N / 2>(values, op), tree_reduce<Begin + N / 2, N / 2>(values, op));
  }
}

// Reduces a value over the 4 lanes that share a row of an accumulator fragment.
__device__ inline float row_max(float value) {
  value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 1));
  return fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 2));
}
__device__ inline float row_sum(float value) {
  value += __shfl_xor_sync(0xffffffffu, value, 1);
  return value + __shfl_xor_sync(0xffffffffu, value, 2);
}

}  // namespace chunktree::tiles
