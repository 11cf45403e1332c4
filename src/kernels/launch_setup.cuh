// What a launch needs to know about the current device, asked of the driver once per device and
// kept: a decode step launches ~100 kernels, and every driver round trip is host time in its step.
// And the chained launch (below) with the two device calls that go with it.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "runtime/check.cuh"

namespace chunktree::kernels {

// A kernel's grid: one CTA per unit of work, or a persistent grid (as many CTAs as fit on the GPU
// at once, at most one per unit) whose CTAs take every gridDim.x-th unit (or claim them: the mma.sync
// kernel's working CTAs, partial_states.cuh). A launch that a CUDA
// graph replays for later schedules is persistent: it serves any later count.
enum class Grid { one_per_tile, persistent };

constexpr int kMaxDevices = 64;  // devices past this ask the driver every time

inline int current_device() {
  int device = 0;
  CHUNKTREE_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

// Raises `kernel`'s dynamic shared memory limit to `bytes` on the current device, once per device
// for each `done` (one per kernel instantiation: the limit belongs to a kernel on a device).
inline void allow_shared_bytes(const void* kernel, int bytes, std::array<std::atomic<bool>, kMaxDevices>& done) {
  const int device = current_device();
  if (device < kMaxDevices && done[static_cast<std::size_t>(device)].load(std::memory_order_acquire)) return;
  CHUNKTREE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  if (device < kMaxDevices) done[static_cast<std::size_t>(device)].store(true, std::memory_order_release);
}

// A positive number of the current device, asked of the driver (ask(device)) once per device for
// each `known` (0: not asked yet).
template <typename Ask>
int asked_once_per_device(std::array<std::atomic<int>, kMaxDevices>& known, Ask&& ask) {
  const int device = current_device();
  if (device < kMaxDevices) {
    if (const int value = known[static_cast<std::size_t>(device)].load(std::memory_order_relaxed); value > 0) return value;
  }
  const int value = std::max(1, ask(device));
  if (device < kMaxDevices) known[static_cast<std::size_t>(device)].store(value, std::memory_order_relaxed);
  return value;
}

// The current device's SM count.
inline int multiprocessor_count() {
  static std::array<std::atomic<int>, kMaxDevices> counts{};
  return asked_once_per_device(counts, [](int device) {
    int count = 0;
    CHUNKTREE_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  });
}

// The current device's peak HBM rate in bytes a µs (twice the memory clock times the bus width), for
// the cost model's prices (cost_model::kFitMemoryBytesPerMicro); 0 where the driver reports no memory
// clock or bus width, which the cost model prices as the fit's card.
inline double memory_bytes_per_micro() {
  static std::array<std::atomic<int>, kMaxDevices> rates{};
  const int rate = asked_once_per_device(rates, [](int device) {
    int clock_khz = 0;
    int bus_bits = 0;
    CHUNKTREE_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device));
    CHUNKTREE_CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device));
    return static_cast<int>(std::int64_t{clock_khz} * bus_bits / 4000);  // 2 × clock_khz × 1e3 × bus_bits / 8 a second, over 1e6 µs
  });
  return rate > 1 ? static_cast<double>(rate) : 0.0;  // 1: asked_once_per_device's floor for a reported 0
}

// How many blocks of `threads` threads (no dynamic shared memory) of `kernel` an SM of the current
// device holds at once, once per device for each `known` (one per kernel instantiation).
inline int resident_blocks_per_sm(const void* kernel, int threads, std::array<std::atomic<int>, kMaxDevices>& known) {
  return asked_once_per_device(known, [&](int) {
    int blocks = 0;
    CHUNKTREE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0));
    return blocks;
  });
}

// Chained launches (programmatic dependent launch). A kernel launched chained to the kernel before
// it on its stream is started while that one runs, once every CTA of that one has let it (below)
// or exited. The merge's CTAs read what the host wrote before either kernel and then wait for the
// states kernel's writes: that hides the merge's start and its first loads behind the states kernel's
// last loads (docs/KERNEL_NOTES.md, experiment 26). A chained mma.sync kernel reads nothing the
// wgmma kernel writes, and only its CTA that ends last waits for it (experiment 104). Under graph
// capture the edge is kept.

// In a kernel that another may be chained to: this CTA no longer holds the chained kernel back.
// The states kernels call it once their producer has issued its last K/V copy: earlier, the chained
// merge's CTAs would sit on the SMs through the whole last wave (the merge reads only the host's
// tables before its wait for the previous kernel). A wgmma kernel that an mma.sync kernel is chained
// to calls it as each CTA starts, so that its CTAs hold their SMs before the mma.sync grid fills the
// rest (experiment 104).
__device__ inline void let_chained_kernel_start() { cudaTriggerProgrammaticLaunchCompletion(); }

// In a kernel that may be launched chained: waits until every kernel it depends on (the one before
// it on its stream, and any a captured graph gave it a programmatic edge from) has finished and its
// writes are visible. Unchained, the stream already waited, and this returns at once.
__device__ inline void wait_for_previous_kernel() { cudaGridDependencySynchronize(); }

// Launches `kernel`, chained to the kernel before it on `stream` when `chained`.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream, bool chained,
                   Args&&... args) {
  cudaLaunchAttribute chain{};
  chain.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  chain.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = chained ? &chain : nullptr;
  config.numAttrs = chained ? 1 : 0;
  CHUNKTREE_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace chunktree::kernels
