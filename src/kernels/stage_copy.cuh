// How a producer warpgroup copies a stage of K and V rows into shared memory with cp.async, for
// both partial-state kernels: thread t always copies 16-byte piece t % kPieces of stage rows
// t / kPieces + kRowsPerPass · j (pass j), so that its sources are one stride apart and its
// destinations follow from the pass alone; no per-copy division or multiplication. The stages
// complete on mbarriers (cp.async.mbarrier.arrive), so a copy is also what fills rows with zeros.
#pragma once

#include <cstdint>

#include <cute/arch/copy_sm80.hpp>

namespace chunktree::kernels {

template <int D, int StageTokens, int Threads>
struct StageCopy {
  static constexpr int kPieces = D / 8;
  static constexpr int kRowsPerPass = Threads / kPieces;
  static constexpr int kPasses = StageTokens / kRowsPerPass;
  static_assert(Threads % kPieces == 0 && StageTokens % kRowsPerPass == 0);
  __device__ static int piece(int thread) { return thread % kPieces; }
  __device__ static int first_row(int thread) { return thread / kPieces; }
};

// Starts copying rows [0, count) of K and V (row r of each at rows + r · stride) into stage rows
// [first, first + count). k_piece(j, row, piece) and v_piece(j, row, piece) say where this
// thread's piece of pass j (stage row `row`, 16-byte piece `piece` of it) goes; a kernel uses
// whichever of the three its layout is cheapest to address by. `Passes` says how the thread finds
// its passes inside the segment (experiment 30).
enum class Passes {
  test_each,    // every pass of the stage, unrolled and tested: a stage that is mostly one segment
  loop_inside,  // a loop over the passes inside the segment only: a stage of several segments
                // (a wgmma stage of 128 positions over 64-position chunks)
};
template <typename Copy, Passes Find = Passes::test_each, typename Element, typename KPiece, typename VPiece>
__device__ void copy_segment(int thread, KPiece k_piece, VPiece v_piece, const Element* k_rows, const Element* v_rows, std::int64_t stride,
                             int first, int count) {
  const int piece = Copy::piece(thread);
  const int row0 = Copy::first_row(thread);
  const std::int64_t pass_stride = Copy::kRowsPerPass * stride;
  const Element* k_source = k_rows + (row0 - first) * stride + 8 * piece;  // this thread's row of pass 0, if it were in range
  const Element* v_source = v_rows + (row0 - first) * stride + 8 * piece;
  const auto copy = [&](int j, int row) {
    cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(*reinterpret_cast<const cute::uint128_t*>(k_source),
                                                          *reinterpret_cast<cute::uint128_t*>(k_piece(j, row, piece)));
    cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(*reinterpret_cast<const cute::uint128_t*>(v_source),
                                                          *reinterpret_cast<cute::uint128_t*>(v_piece(j, row, piece)));
  };
  if constexpr (Find == Passes::test_each) {
#pragma unroll
    for (int j = 0; j < Copy::kPasses; ++j) {
      const int row = row0 + j * Copy::kRowsPerPass;
      if (row >= first && row < first + count) copy(j, row);
      k_source += pass_stride;
      v_source += pass_stride;
    }
  } else {
    // Pass j holds row row0 + j · kRowsPerPass; first − row0 + kRowsPerPass − 1 is never negative.
    const int begin = (first - row0 + Copy::kRowsPerPass - 1) / Copy::kRowsPerPass;
    const int end = (first + count - row0 + Copy::kRowsPerPass - 1) / Copy::kRowsPerPass;
    k_source += begin * pass_stride;
    v_source += begin * pass_stride;
    for (int j = begin; j < end; ++j) {
      copy(j, row0 + j * Copy::kRowsPerPass);
      k_source += pass_stride;
      v_source += pass_stride;
    }
  }
}

// Zero-fills stage rows [first, end) of K and V (cp.async with no source bytes, so that the
// stage's mbarrier covers it too; any valid global address serves as the source).
template <typename Copy, typename KPiece, typename VPiece>
__device__ void zero_rows(int thread, KPiece k_piece, VPiece v_piece, const void* anywhere, int first, int end) {
  if (first >= end) return;  // a whole stage: no pass to test
  const int piece = Copy::piece(thread);
  const auto& source = *static_cast<const cute::uint128_t*>(anywhere);
#pragma unroll
  for (int j = 0; j < Copy::kPasses; ++j) {
    const int row = Copy::first_row(thread) + j * Copy::kRowsPerPass;
    if (row >= first && row < end) {
      cute::SM80_CP_ASYNC_CACHEGLOBAL_ZFILL<cute::uint128_t>::copy(source, *reinterpret_cast<cute::uint128_t*>(k_piece(j, row, piece)), false);
      cute::SM80_CP_ASYNC_CACHEGLOBAL_ZFILL<cute::uint128_t>::copy(source, *reinterpret_cast<cute::uint128_t*>(v_piece(j, row, piece)), false);
    }
  }
}

}  // namespace chunktree::kernels
