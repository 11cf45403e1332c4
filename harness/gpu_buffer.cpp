#include "harness/gpu_buffer.hpp"

#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "chunktree/types.hpp"

namespace chunktree::harness {

GpuBuffer::GpuBuffer(std::size_t bytes) {
  const cudaError_t status = cudaMalloc(&data_, bytes == 0 ? 1 : bytes);
  if (status != cudaSuccess) {
    data_ = nullptr;
    throw Error(ErrorCode::cuda, "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(status));
  }
}

GpuBuffer::~GpuBuffer() {
  if (data_ != nullptr) cudaFree(data_);
}

GpuBuffer::GpuBuffer(GpuBuffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}

}  // namespace chunktree::harness
