// The TMA's view of the K and V storage (experiments 36 and 79), for the wgmma producer: each one 2-D
// tensor whose rows are the storage's token rows (row_elements apart: D for head-major chunks and
// pages, kv heads × D for token-major pages), read in boxes of 64 elements × 64 or 16 rows with the
// 128-byte swizzle of the stage layouts. A box starts anywhere in a row, so that the box of one kv
// head's 64 elements of 16 tokens of a token-major page is one TMA load. The producer copies each
// run's part of a stage as boxes where it can (kernels/run_window.cuh) and the rest by cp.async.
// Over an engine's pages of fewer than 64 tokens there are also 3-D maps (row, row in a page's block
// of rows, page), so that a stage of whole consecutive pages is one box per 64 columns, not one per
// page (experiment 84: 16-row boxes cost the decode step's wgmma kernel 11-17 %).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudaTypedefs.h>
#include <cutlass/cuda_host_adapter.hpp>
#include <cutlass/fast_math.h>

#include "chunktree/types.hpp"
#include "kernels/tile_shapes.hpp"

namespace chunktree::kernels {

constexpr int kBoxRows = 64;       // runs of joined chunks or long pages
constexpr int kShortBoxRows = 16;  // pages of 16 tokens (or what is left of a run after its 64-row boxes)
constexpr int kBoxElements = 64;
constexpr std::uint64_t kMapRows = std::uint64_t{1} << 31;  // a box's row is a signed 32-bit coordinate

// Where a box starts: element `column` of row `row` of a map (16-bit elements).
struct BoxStart {
  std::int32_t column;
  std::int32_t row;
};

// Where a run's K and V boxes start (its first row's); row −1 where it has none.
struct RunBoxes {
  BoxStart k;
  BoxStart v;
};

struct KvTensorMaps {
  CUtensorMap k;  // boxes of kBoxRows rows
  CUtensorMap v;
  CUtensorMap k_short;  // boxes of kShortBoxRows rows
  CUtensorMap v_short;
  CUtensorMap k_pages;  // boxes of a stage's pages, page_tokens rows of each
  CUtensorMap v_pages;
  cutlass::FastDivmodU64 row_bytes;  // bytes from one row of the maps to the next
  cutlass::FastDivmod page_rows;     // rows from one page's first row to the next page's
  std::int64_t row_elements = 0;
  int page_tokens = 0;   // tokens a page holds where the page maps are made; 0 where they are not
  int stage_pages = 0;   // the pages of a wgmma stage, kWgmmaStageTokens / page_tokens (no division a stage)
  bool enabled = false;  // false where the runs address K and V absolutely (the levels API: bases 0)

  // Where the boxes of a run start: `tokens` rows of `token_stride` elements whose first starts
  // `k_from` and `v_from` bytes past the bases, HeadBytes of a kv head each. Row −1 where the run
  // cannot be read as boxes: its rows are not the maps' rows, or a head's bytes are not 16-byte
  // aligned inside one row, or the run reaches past the maps' rows.
  template <int HeadBytes>
  __device__ RunBoxes run_boxes(std::int64_t token_stride, std::uint64_t k_from, std::uint64_t v_from, int tokens) const {
    constexpr RunBoxes kNone{{0, -1}, {0, -1}};
    if (!enabled || token_stride != row_elements || (k_from | v_from) % 16 != 0) return kNone;
    const auto start = [&](std::uint64_t from) {
      std::uint64_t row = 0, rest = 0;
      row_bytes(row, rest, from);
      const bool fits = rest + HeadBytes <= row_bytes.divisor && row + tokens < kMapRows - kBoxRows;
      return fits ? BoxStart{static_cast<std::int32_t>(rest / 2), static_cast<std::int32_t>(row)} : BoxStart{0, -1};
    };
    const RunBoxes boxes{start(k_from), start(v_from)};
    return boxes.k.row < 0 || boxes.v.row < 0 ? kNone : boxes;
  }
};

// Encodes a map of `rank` dimensions over K or V at `base` with the options every map here shares:
// the element type, and the 128-byte swizzle that the stage layouts are read with.
template <typename Element>
CUresult encode_kv_map(CUtensorMap& map, std::uintptr_t base, cuuint32_t rank, const cuuint64_t* extent, const cuuint64_t* strides,
                       const cuuint32_t* box) {
  const cuuint32_t element_strides[3] = {1, 1, 1};
  return cutlass::call_cuTensorMapEncodeTiled(
      &map, std::is_same_v<Element, __nv_bfloat16> ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, rank,
      reinterpret_cast<void*>(base), extent, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

// A tensor map over rows of row_elements elements, row_elements apart, from `base` (its extent is
// as many rows as a coordinate reaches: boxes are only ever asked for inside the caller's storage).
template <typename Element>
CUtensorMap rows_map(std::uintptr_t base, std::int64_t row_elements, int box_rows) {
  CUtensorMap map{};
  const cuuint64_t extent[2] = {static_cast<cuuint64_t>(row_elements), kMapRows};
  const cuuint64_t row_bytes[1] = {row_elements * sizeof(Element)};
  const cuuint32_t box[2] = {kBoxElements, static_cast<cuuint32_t>(box_rows)};
  const CUresult result = encode_kv_map<Element>(map, base, 2, extent, row_bytes, box);
  if (result != CUDA_SUCCESS) {
    throw Error(ErrorCode::cuda, "cuda backend: cuTensorMapEncodeTiled failed (" + std::to_string(static_cast<int>(result)) +
                                     ") for the K/V storage at " + std::to_string(base) + " with rows of " + std::to_string(row_elements) +
                                     " elements; K and V must be 16-byte aligned");
  }
  return map;
}

// A 3-D map over pages whose rows are `page_rows` rows of row_elements elements (a page's K or V
// rows of every kv head), a page `page_stride` elements after the last, read in boxes of 64 elements
// × page_tokens rows × the pages of a wgmma stage. False where the driver takes no such map: the
// stages then go by the 2-D maps' boxes as before.
template <typename Element>
bool pages_map(CUtensorMap& map, std::uintptr_t base, std::int64_t row_elements, std::int64_t page_rows, std::int64_t page_stride, int page_tokens) {
  const cuuint64_t extent[3] = {static_cast<cuuint64_t>(row_elements), static_cast<cuuint64_t>(page_rows),
                                static_cast<cuuint64_t>(kMapRows / static_cast<std::uint64_t>(page_rows))};
  const cuuint64_t strides[2] = {row_elements * sizeof(Element), page_stride * sizeof(Element)};
  const cuuint32_t box[3] = {kBoxElements, static_cast<cuuint32_t>(page_tokens), static_cast<cuuint32_t>(kWgmmaStageTokens / page_tokens)};
  return encode_kv_map<Element>(map, base, 3, extent, strides, box) == CUDA_SUCCESS;
}

// The maps of the last K and V storage launched with, per element type and head dim (a decode step
// launches every layer over the same storage; encoding a map is a driver call). `token_stride`:
// elements from one token's row of a kv head to the next token's (0: unknown, no maps);
// `page_stride` and `page_tokens`: an engine's pages (0: not pages).
template <typename Element, int D>
const KvTensorMaps& kv_maps(std::uintptr_t k_base, std::uintptr_t v_base, std::int64_t token_stride, std::int64_t page_stride, int page_tokens) {
  struct Storage {
    std::uintptr_t k = 0, v = 0;
    std::int64_t token_stride = 0;
    std::int64_t page_stride = 0;
    int page_tokens = 0;
    bool operator==(const Storage&) const = default;
  };
  struct Last {
    bool made = false;
    Storage storage;
    KvTensorMaps maps{};
  };
  thread_local Last last;
  const Storage storage{k_base, v_base, token_stride, page_stride, page_tokens};
  if (!last.made || last.storage != storage) {
    // Rows must be whole 16-byte pieces and hold a head's D elements, and the row a dimension and
    // its pitch a stride the TMA takes (at most 2^32 elements, under 2^40 bytes); any other storage
    // goes by cp.async (an unused axis may carry any stride: a pool of one-token pages).
    const bool enabled = k_base != 0 && v_base != 0 && token_stride >= D && token_stride * sizeof(Element) % 16 == 0 &&
                         token_stride <= (std::int64_t{1} << 32) && token_stride * static_cast<std::int64_t>(sizeof(Element)) < (std::int64_t{1} << 40);
    KvTensorMaps maps{};
    if (enabled) {
      maps = KvTensorMaps{rows_map<Element>(k_base, token_stride, kBoxRows),
                          rows_map<Element>(v_base, token_stride, kBoxRows),
                          rows_map<Element>(k_base, token_stride, kShortBoxRows),
                          rows_map<Element>(v_base, token_stride, kShortBoxRows),
                          {},
                          {},
                          cutlass::FastDivmodU64(static_cast<std::uint64_t>(token_stride) * sizeof(Element)),
                          cutlass::FastDivmod(1),
                          token_stride,
                          0,
                          0,
                          true};
      // Pages of fewer rows than the long boxes whose stage-sized run of pages fits one box, and a page's
      // block a whole number of rows.
      const std::int64_t page_rows = page_stride / token_stride;
      const bool paged = page_tokens >= 8 && page_tokens < kBoxRows && kWgmmaStageTokens % page_tokens == 0 && page_stride % token_stride == 0 &&
                         page_rows >= page_tokens && page_rows < (std::int64_t{1} << 24) &&
                         page_stride * static_cast<std::int64_t>(sizeof(Element)) % 16 == 0 &&
                         page_stride * static_cast<std::int64_t>(sizeof(Element)) < (std::int64_t{1} << 40);
      if (paged && pages_map<Element>(maps.k_pages, k_base, token_stride, page_rows, page_stride, page_tokens) &&
          pages_map<Element>(maps.v_pages, v_base, token_stride, page_rows, page_stride, page_tokens)) {
        maps.page_rows = cutlass::FastDivmod(static_cast<int>(page_rows));
        maps.page_tokens = page_tokens;
        maps.stage_pages = kWgmmaStageTokens / page_tokens;
      }
    }
    last = Last{true, storage, maps};
  }
  return last.maps;
}

}  // namespace chunktree::kernels
