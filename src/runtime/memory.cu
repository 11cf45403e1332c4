#include "runtime/memory.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "runtime/check.cuh"

namespace chunktree::cuda_memory {

namespace {

cudaError_t allocate(Memory where, void** data, std::size_t bytes) {
  return where == Memory::device ? cudaMalloc(data, bytes) : cudaMallocHost(data, bytes);
}

void release(Memory where, void* data) {  // errors here have nowhere to go
  if (data == nullptr) return;
  if (where == Memory::device) {
    cudaFree(data);
  } else {
    cudaFreeHost(data);
  }
}

}  // namespace

template <Memory kWhere>
Allocation<kWhere>::Allocation(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = allocate(kWhere, &data_, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    data_ = nullptr;
    throw Error(ErrorCode::cuda, std::string(kWhere == Memory::device ? "cudaMalloc" : "cudaMallocHost") + " of " +
                                     std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(status) +
                                     (status == cudaErrorMemoryAllocation ? " (use a smaller capacity_chunks or batch)" : ""));
  }
}

template <Memory kWhere>
Allocation<kWhere>::~Allocation() {
  release(kWhere, data_);
}

template <Memory kWhere>
Allocation<kWhere>::Allocation(Allocation&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

template <Memory kWhere>
Allocation<kWhere>& Allocation<kWhere>::operator=(Allocation&& other) noexcept {
  if (this != &other) {
    release(kWhere, data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

template class Allocation<Memory::device>;
template class Allocation<Memory::pinned_host>;

void copy_to_device(void* destination, const void* source, std::size_t bytes) {
  if (bytes > 0) CHUNKTREE_CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* destination, const void* source, std::size_t bytes) {
  if (bytes > 0) CHUNKTREE_CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyDeviceToHost));
}

void fill_zero(void* destination, std::size_t bytes) {
  if (bytes == 0) return;
  CHUNKTREE_CUDA_CHECK(cudaMemset(destination, 0, bytes));
  // Done before returning: work on any stream (a write_kv on the caller's) may use the memory next.
  CHUNKTREE_CUDA_CHECK(cudaDeviceSynchronize());
}

void expect_device_pointer(const void* pointer, const char* what) {
  cudaPointerAttributes attributes{};
  const cudaError_t status = cudaPointerGetAttributes(&attributes, pointer);
  if (status != cudaSuccess) cudaGetLastError();
  const bool on_device = status == cudaSuccess &&
                         (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged);
  if (!on_device) {
    throw Error(ErrorCode::invalid_argument, std::string(what) +
                                                 " is labelled as CUDA memory but its pointer is not device memory; "
                                                 "pass a buffer from cudaMalloc (or a CUDA tensor)");
  }
}

void require_current_hopper() {
  int device = 0;
  const cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorCode::unsupported, "no CUDA device is usable (" + std::string(cudaGetErrorString(status)) +
                                            "); use device cpu");
  }
  require_hopper(device);
}

namespace {

// Host slots travel in the launch's parameters (8 KiB here; Hopper takes up to 32 KiB), not in
// device memory: a write then needs no allocation, no copy and no synchronization, and a captured
// graph keeps its own copy of them. Slots in device memory (a captured graph's, refilled every
// step) are read by the kernel, which skips any outside the pool.
constexpr int kSlotsPerLaunch = 1024;
struct SlotBatch {
  Slot slots[kSlotsPerLaunch];
  __device__ bool get(std::int64_t i, Slot& slot) const {
    slot = slots[i];
    return true;
  }
};
struct SlotPairs {
  const std::int32_t* pairs;
  std::int64_t chunks;
  std::int32_t chunk_size;
  __device__ bool get(std::int64_t i, Slot& slot) const {
    slot = Slot{pairs[2 * i], pairs[2 * i + 1]};
    return slot.chunk >= 0 && slot.chunk < chunks && slot.offset >= 0 && slot.offset < chunk_size;
  }
};

// One thread per piece of K and V: 16 bytes (8 elements, a uint4) where the inputs are in the pool's
// dtype and every address is 16-byte aligned, else one element (converted from f32 where needed).
// The copy is small next to attention but sits on a decode layer's path before it: one thread per
// 2-byte element took 2.5-5.4 µs a layer (docs/KERNEL_NOTES.md, experiment 72). `k` and `v` start
// at the first slot of `slots`; strides and head_pieces count pieces.
template <typename In, typename Piece, typename Slots>
__global__ void scatter_kv_kernel(Slots slots, std::int64_t count, int kv_heads, int head_pieces, const In* k, const In* v, Piece* k_pool,
                                  Piece* v_pool, std::int64_t chunk_stride, std::int64_t head_stride, bool to_bf16) {
  const std::int64_t per_slot = static_cast<std::int64_t>(kv_heads) * head_pieces;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count * per_slot;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    Slot slot;
    if (!slots.get(i / per_slot, slot)) continue;
    const int head = static_cast<int>(i % per_slot / head_pieces);
    const int piece = static_cast<int>(i % head_pieces);
    const std::int64_t destination = slot.chunk * chunk_stride + head * head_stride + static_cast<std::int64_t>(slot.offset) * head_pieces + piece;
    if constexpr (std::is_same_v<In, float>) {
      k_pool[destination] = to_bf16 ? float_to_bf16(k[i]) : float_to_fp16(k[i]);
      v_pool[destination] = to_bf16 ? float_to_bf16(v[i]) : float_to_fp16(v[i]);
    } else {
      k_pool[destination] = k[i];
      v_pool[destination] = v[i];
    }
  }
}

bool aligned_16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

// One launch: `count` slots' K and V (`In` elements, [slots, kv_heads, head_dim]) into the pool.
template <typename In, typename Slots>
void launch_scatter(const PoolView& pool, int kv_heads, int head_dim, const Slots& slots, std::int64_t count, const void* k, const void* v,
                    cudaStream_t stream) {
  const auto launch = [&]<typename Piece, typename PieceIn>(int elements_per_piece) {
    const std::int64_t pieces = count * kv_heads * (head_dim / elements_per_piece);
    const int threads = 256;
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>((pieces + threads - 1) / threads, 65535));
    scatter_kv_kernel<PieceIn, Piece><<<blocks, threads, 0, stream>>>(
        slots, count, kv_heads, head_dim / elements_per_piece, static_cast<const PieceIn*>(k), static_cast<const PieceIn*>(v),
        static_cast<Piece*>(const_cast<void*>(pool.k)), static_cast<Piece*>(const_cast<void*>(pool.v)), pool.chunk_stride / elements_per_piece,
        pool.head_stride / elements_per_piece, pool.dtype == DType::bf16);
    CHUNKTREE_CUDA_CHECK(cudaGetLastError());
  };
  if constexpr (std::is_same_v<In, std::uint16_t>) {
    constexpr int kPieceElements = sizeof(uint4) / sizeof(std::uint16_t);
    const bool whole_pieces = head_dim % kPieceElements == 0 && pool.position_stride == head_dim && pool.chunk_stride % kPieceElements == 0 &&
                              pool.head_stride % kPieceElements == 0;
    if (whole_pieces && aligned_16(k) && aligned_16(v) && aligned_16(pool.k) && aligned_16(pool.v)) {
      return launch.template operator()<uint4, uint4>(kPieceElements);
    }
  }
  launch.template operator()<std::uint16_t, In>(1);
}

// Host slots, kSlotsPerLaunch per launch.
template <typename In>
void launch_scatter(const PoolView& pool, int kv_heads, int head_dim, std::span<const Slot> slots, const void* k, const void* v,
                    cudaStream_t stream) {
  const std::int64_t per_slot = static_cast<std::int64_t>(kv_heads) * head_dim;
  for (std::size_t first = 0; first < slots.size(); first += kSlotsPerLaunch) {
    const int count = static_cast<int>(std::min<std::size_t>(kSlotsPerLaunch, slots.size() - first));
    SlotBatch batch;
    std::copy_n(slots.begin() + static_cast<std::ptrdiff_t>(first), count, batch.slots);
    const std::int64_t offset = static_cast<std::int64_t>(first) * per_slot;
    launch_scatter<In>(pool, kv_heads, head_dim, batch, count, static_cast<const In*>(k) + offset, static_cast<const In*>(v) + offset, stream);
  }
}

// K and V in device memory: f32 or the pool's dtype, both the same.
void expect_device_kv(const PoolView& pool, const ConstTensorView& k, const ConstTensorView& v) {
  expect_device_pointer(k.data, "write_kv: k");
  expect_device_pointer(v.data, "write_kv: v");
  if (k.dtype != v.dtype || (k.dtype != DType::f32 && k.dtype != pool.dtype)) {
    throw Error(ErrorCode::invalid_argument, "write_kv: device k and v must both be f32 or the cache's dtype " +
                                                 std::string(to_string(pool.dtype)));
  }
}

}  // namespace

void scatter_kv(const PoolView& pool, int kv_heads, int head_dim, std::span<const Slot> slots, const ConstTensorView& k,
                const ConstTensorView& v, void* stream_handle) {
  if (slots.empty()) return;
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  if (k.device == Device::cuda) {
    expect_device_kv(pool, k, v);
    if (k.dtype == DType::f32) return launch_scatter<float>(pool, kv_heads, head_dim, slots, k.data, v.data, stream);
    return launch_scatter<std::uint16_t>(pool, kv_heads, head_dim, slots, k.data, v.data, stream);
  }
  // From the host: converted to the pool's dtype, staged in device memory, and waited for (the
  // staging dies with this call).
  const std::size_t elements = slots.size() * static_cast<std::size_t>(kv_heads) * static_cast<std::size_t>(head_dim);
  std::vector<std::uint16_t> host(2 * elements);
  for (std::size_t i = 0; i < elements; ++i) {
    const float kv[2] = {load_element(k.data, k.dtype, static_cast<std::int64_t>(i)), load_element(v.data, v.dtype, static_cast<std::int64_t>(i))};
    for (int which = 0; which < 2; ++which) host[which * elements + i] = pool.dtype == DType::bf16 ? float_to_bf16(kv[which]) : float_to_fp16(kv[which]);
  }
  DeviceAllocation staging(host.size() * sizeof(std::uint16_t));
  // On `stream`, so that the kernel after it sees the whole copy (a cudaMemcpy on the legacy stream
  // may return early, and a non-blocking stream does not wait for it).
  CHUNKTREE_CUDA_CHECK(cudaMemcpyAsync(staging.data(), host.data(), staging.bytes(), cudaMemcpyHostToDevice, stream));
  const auto* staged = static_cast<const std::uint16_t*>(staging.data());
  launch_scatter<std::uint16_t>(pool, kv_heads, head_dim, slots, staged, staged + elements, stream);
  CHUNKTREE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void scatter_kv(const PoolView& pool, int kv_heads, int head_dim, DeviceSlots slots, std::int64_t chunks, std::int32_t chunk_size,
                const ConstTensorView& k, const ConstTensorView& v, void* stream_handle) {
  if (slots.count == 0) return;
  expect_device_kv(pool, k, v);
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const SlotPairs pairs{slots.pairs, chunks, chunk_size};
  if (k.dtype == DType::f32) return launch_scatter<float>(pool, kv_heads, head_dim, pairs, slots.count, k.data, v.data, stream);
  launch_scatter<std::uint16_t>(pool, kv_heads, head_dim, pairs, slots.count, k.data, v.data, stream);
}

}  // namespace chunktree::cuda_memory
