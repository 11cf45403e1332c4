// A probe for compute-sanitizer racecheck: does it model the shared-memory hand-off the states
// kernels use (cp.async writes completing on an mbarrier, read by other warps after they wait on
// it)? Each variant hands a tile from a producer warp to a consumer warp, which reads it with
// ldmatrix and writes what it read to global memory; the host checks every value. Run each variant
// alone under racecheck (scripts/gpu-check does): hazards reported on a variant whose data always
// checks out, and that the PTX memory model orders, are the tool's, not the kernel's.
//
//   chunktree_handoff_probe VARIANT   (syncthreads | mbarrier-noinc | mbarrier-release | refill)
//
// syncthreads: cp.async, cp.async.wait_all, __syncthreads — the ordering racecheck is known to see.
// mbarrier-noinc: cp.async, cp.async.mbarrier.arrive.noinc; the consumer waits on the mbarrier (the
//   mma.sync kernel's stages and tile hand-off).
// mbarrier-release: cp.async, cp.async.wait_all, then a release mbarrier.arrive; the consumer waits.
// refill: mbarrier-noinc, then the other direction, as the ring's empty barrier orders it: after
//   its ldmatrix reads the consumer warp syncs (__syncwarp) and its lane 0 arrives on a second
//   mbarrier; the producer waits on it and overwrites the tile with cp.async (a second tile; a read
//   that saw it would be wrong).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cute/arch/copy_sm75.hpp>
#include <cute/arch/copy_sm80.hpp>
#include <cutlass/arch/barrier.h>

namespace {

constexpr int kRows = 16;
constexpr int kPieces = 8;  // 16-byte pieces per row: 64 16-bit elements
constexpr int kThreads = 64;  // warp 0 produces, warp 1 consumes

enum class Variant { syncthreads, mbarrier_noinc, mbarrier_release, refill };

// Warp 0 copies the tile into shared memory; warp 1 reads it back with ldmatrix once the variant's
// ordering says it has landed, and stores each lane's registers. Under `refill` warp 0 then copies
// the second tile (`tile` holds two) into the same place once warp 1 says it has read the first.
__global__ void handoff_kernel(const cute::uint128_t* tile, std::uint32_t* read_back, Variant variant) {
  __shared__ alignas(128) std::uint32_t staged_words[kRows * kPieces * 4];
  auto* staged = reinterpret_cast<cute::uint128_t*>(staged_words);
  __shared__ alignas(8) std::uint64_t landed;
  __shared__ alignas(8) std::uint64_t drained;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  if (threadIdx.x == 0) {
    cutlass::arch::ClusterBarrier::init(&landed, 32);
    cutlass::arch::ClusterBarrier::init(&drained, 1);
  }
  cutlass::arch::fence_barrier_init();
  __syncthreads();

  if (warp == 0) {
    for (int index = lane; index < kRows * kPieces; index += 32) cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(tile[index], staged[index]);
    if (variant == Variant::mbarrier_noinc || variant == Variant::refill) {
      cutlass::arch::cpasync_barrier_arrive_noinc(&landed);
    } else {
      cute::cp_async_wait<0>();
      if (variant == Variant::mbarrier_release) cutlass::arch::ClusterBarrier::arrive(&landed);
    }
  }
  if (variant == Variant::syncthreads) __syncthreads();
  if (warp == 0 && variant == Variant::refill) {
    cutlass::arch::ClusterBarrier::wait(&drained, 0);
    for (int index = lane; index < kRows * kPieces; index += 32) {
      cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(tile[kRows * kPieces + index], staged[index]);
    }
    cute::cp_async_wait<0>();
  }
  if (warp != 1) return;
  if (variant != Variant::syncthreads) cutlass::arch::ClusterBarrier::wait(&landed, 0);
  for (int piece = 0; piece < kPieces; piece += 2) {
    std::uint32_t r[4];
    cute::SM75_U32x4_LDSM_N::copy(staged[(lane % 16) * kPieces + piece + lane / 16], r[0], r[1], r[2], r[3]);
    for (int i = 0; i < 4; ++i) read_back[(piece / 2 * 4 + i) * 32 + lane] = r[i];
  }
  if (variant == Variant::refill) {
    __syncwarp();
    if (lane == 0) cutlass::arch::ClusterBarrier::arrive(&drained);
  }
}

bool check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return true;
  std::fprintf(stderr, "handoff_probe: %s: %s\n", what, cudaGetErrorString(status));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string name = argc == 2 ? argv[1] : "";
  Variant variant;
  if (name == "syncthreads") {
    variant = Variant::syncthreads;
  } else if (name == "mbarrier-noinc") {
    variant = Variant::mbarrier_noinc;
  } else if (name == "mbarrier-release") {
    variant = Variant::mbarrier_release;
  } else if (name == "refill") {
    variant = Variant::refill;
  } else {
    std::fprintf(stderr, "usage: chunktree_handoff_probe syncthreads|mbarrier-noinc|mbarrier-release|refill\n");
    return 2;
  }
  // Every 16-bit element of both tiles distinct, so that a stale, early or misplaced read shows.
  std::vector<std::uint16_t> tile(2 * kRows * kPieces * 8);
  for (std::size_t i = 0; i < tile.size(); ++i) tile[i] = static_cast<std::uint16_t>(0x1000 + i);
  constexpr int kWords = kPieces / 2 * 4 * 32;
  void* tile_device = nullptr;
  void* read_device = nullptr;
  if (!check(cudaMalloc(&tile_device, tile.size() * 2), "cudaMalloc") || !check(cudaMalloc(&read_device, kWords * 4), "cudaMalloc")) return 1;
  if (!check(cudaMemcpy(tile_device, tile.data(), tile.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy")) return 1;
  if (!check(cudaMemset(read_device, 0xff, kWords * 4), "cudaMemset")) return 1;
  handoff_kernel<<<1, kThreads>>>(static_cast<const cute::uint128_t*>(tile_device), static_cast<std::uint32_t*>(read_device), variant);
  if (!check(cudaGetLastError(), "launch") || !check(cudaDeviceSynchronize(), "kernel")) return 1;
  std::vector<std::uint32_t> read(kWords);
  if (!check(cudaMemcpy(read.data(), read_device, kWords * 4, cudaMemcpyDeviceToHost), "cudaMemcpy")) return 1;
  // ldmatrix (non-transposed, four 8×8 matrices): register i of lane l holds row l / 4 (+ 8 for
  // i = 1, 3) of the tile, elements 2·(l % 4) and the next of piece `piece` (+ 1 for i = 2, 3).
  int wrong = 0;
  for (int piece = 0; piece < kPieces; piece += 2) {
    for (int i = 0; i < 4; ++i) {
      for (int lane = 0; lane < 32; ++lane) {
        const int row = lane / 4 + (i % 2) * 8;
        const int element = (piece + i / 2) * 8 + 2 * (lane % 4);
        const std::uint32_t expected = tile[row * kPieces * 8 + element] | (static_cast<std::uint32_t>(tile[row * kPieces * 8 + element + 1]) << 16);
        wrong += read[(piece / 2 * 4 + i) * 32 + lane] != expected;
      }
    }
  }
  cudaFree(tile_device);
  cudaFree(read_device);
  std::printf("%s: %d of %d words wrong\n", name.c_str(), wrong, kWords);
  return wrong == 0 ? 0 : 1;
}
