// What a launch needs to know about the current device, asked of the driver once per device and
// kept: a decode step launches ~100 kernels, and every driver round trip is host time in its step.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <atomic>

#include "runtime/check.cuh"

namespace chunktree::kernels {

// A kernel's grid: one CTA per unit of work, or a persistent grid (as many CTAs as fit on the GPU
// at once, at most one per unit) whose CTAs take every gridDim.x-th unit. A launch that a CUDA
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

// The current device's SM count.
inline int multiprocessor_count() {
  static std::array<std::atomic<int>, kMaxDevices> counts{};  // 0: not asked yet
  const int device = current_device();
  if (device < kMaxDevices) {
    if (const int known = counts[static_cast<std::size_t>(device)].load(std::memory_order_relaxed); known > 0) return known;
  }
  int count = 0;
  CHUNKTREE_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  if (device < kMaxDevices) counts[static_cast<std::size_t>(device)].store(count, std::memory_order_relaxed);
  return count;
}

}  // namespace chunktree::kernels
