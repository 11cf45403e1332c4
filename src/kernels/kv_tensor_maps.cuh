// The TMA's view of the K and V storage (experiment 36), for the wgmma producer: each one 2-D tensor
// of rows of D elements from its base (a row is one position of one kv head wherever a run's
// positions are consecutive rows), read in boxes of 64 positions × 64 elements with the 128-byte
// swizzle of the stage layouts. The producer copies a 64-position run segment that starts a half
// stage with D/64 boxes each for K and V from one thread; any other segment goes by cp.async.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudaTypedefs.h>
#include <cutlass/cuda_host_adapter.hpp>

#include "chunktree/types.hpp"

namespace chunktree::kernels {

constexpr int kBoxRows = 64;
constexpr int kBoxElements = 64;
constexpr std::uint64_t kMapRows = std::uint64_t{1} << 31;  // a box's row is a signed 32-bit coordinate

struct KvTensorMaps {
  CUtensorMap k;
  CUtensorMap v;
  bool enabled;  // false where the runs address K and V absolutely (the levels API: bases 0)

  // Whether rows that start `k_from` and `v_from` bytes past the bases can be read as boxes: whole
  // rows, inside the maps.
  template <typename T, int D>
  __device__ bool boxes_at(std::uintptr_t k_from, std::uintptr_t v_from) const {
    constexpr std::uintptr_t kRowBytes = D * sizeof(T);
    return enabled && k_from % kRowBytes == 0 && v_from % kRowBytes == 0 && k_from / kRowBytes < kMapRows - kBoxRows &&
           v_from / kRowBytes < kMapRows - kBoxRows;
  }
};

// A tensor map over rows of D elements from `base` (its extent is as many rows as a coordinate
// reaches: boxes are only ever asked for inside the caller's storage).
template <typename Element, int D>
CUtensorMap rows_map(std::uintptr_t base) {
  CUtensorMap map{};
  const cuuint64_t extent[2] = {D, kMapRows};
  const cuuint64_t row_bytes[1] = {D * sizeof(Element)};
  const cuuint32_t box[2] = {kBoxElements, kBoxRows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult result = cutlass::call_cuTensorMapEncodeTiled(
      &map, std::is_same_v<Element, __nv_bfloat16> ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
      reinterpret_cast<void*>(base), extent, row_bytes, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result != CUDA_SUCCESS) {
    throw Error(ErrorCode::cuda, "cuda backend: cuTensorMapEncodeTiled failed (" + std::to_string(static_cast<int>(result)) +
                                     ") for the K/V storage at " + std::to_string(base) + "; K and V must be 16-byte aligned");
  }
  return map;
}

// The maps of the last K and V bases launched with, per element type and head dim (a decode step
// launches every layer over the same storage; encoding a map is a driver call).
template <typename Element, int D>
const KvTensorMaps& kv_maps(std::uintptr_t k_base, std::uintptr_t v_base) {
  struct Last {
    bool made = false;
    std::uintptr_t k = 0, v = 0;
    KvTensorMaps maps{};
  };
  thread_local Last last;
  if (!last.made || last.k != k_base || last.v != v_base) {
    const bool enabled = k_base != 0 && v_base != 0;
    last.maps = enabled ? KvTensorMaps{rows_map<Element, D>(k_base), rows_map<Element, D>(v_base), true} : KvTensorMaps{};
    last.made = true;
    last.k = k_base;
    last.v = v_base;
  }
  return last.maps;
}

}  // namespace chunktree::kernels
