// Device memory for the library's own buffers (pools, plans, scratch), behind a plain C++
// interface so that host code compiled without nvcc can use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "chunktree/prefix_cache.hpp"
#include "chunktree/types.hpp"

namespace chunktree::cuda_memory {

// Where an Allocation lives: device memory (cudaMalloc), or page-locked host memory
// (cudaMallocHost), the source of copies that run asynchronously on a stream.
enum class Memory { device, pinned_host };

// An owning allocation of `bytes` (none for 0).
template <Memory kWhere>
class Allocation {
 public:
  Allocation() = default;
  explicit Allocation(std::size_t bytes);  // throws Error (cuda) naming the size on failure
  ~Allocation();
  Allocation(Allocation&& other) noexcept;
  Allocation& operator=(Allocation&& other) noexcept;
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

using DeviceAllocation = Allocation<Memory::device>;
using PinnedAllocation = Allocation<Memory::pinned_host>;

void copy_to_device(void* destination, const void* source, std::size_t bytes);
void copy_to_host(void* destination, const void* source, std::size_t bytes);
void fill_zero(void* destination, std::size_t bytes);

// Throws invalid_argument naming `what` unless `pointer` is memory the current GPU can read
// (device or managed memory), so that a host pointer labelled "cuda" is caught.
void expect_device_pointer(const void* pointer, const char* what);

// Throws unsupported unless the current CUDA device is a Hopper GPU that runs this build.
void require_current_hopper();

// Writes K and V ([slots, kv_heads, head_dim], f32 or the pool's dtype) into a device pool on
// `stream`. From device memory it only enqueues (no allocation, no synchronization; capturable);
// from the host it stages a converted copy and waits for the stream.
void scatter_kv(const PoolView& pool, int kv_heads, int head_dim, std::span<const Slot> slots, const ConstTensorView& k,
                const ConstTensorView& v, void* stream);
// The same with K, V and the slots in device memory, enqueued only; slots outside the pool (of
// `chunks` chunks of `chunk_size` positions) are skipped.
void scatter_kv(const PoolView& pool, int kv_heads, int head_dim, DeviceSlots slots, std::int64_t chunks, std::int32_t chunk_size,
                const ConstTensorView& k, const ConstTensorView& v, void* stream);

}  // namespace chunktree::cuda_memory
