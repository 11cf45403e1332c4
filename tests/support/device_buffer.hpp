// Device memory for GPU tests, poisoned (all bits set: NaN in f32, bf16 and f16) on creation.
#pragma once

#include <cuda_runtime.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#define CHUNKTREE_TEST_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

namespace chunktree::testing {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    EXPECT_EQ(cudaMalloc(&data_, bytes == 0 ? 1 : bytes), cudaSuccess);
    poison();
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)), bytes_(other.bytes_) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  void poison() { EXPECT_EQ(cudaMemset(data_, 0xff, bytes_), cudaSuccess); }
  template <typename T>
  void upload(const std::vector<T>& values) {
    EXPECT_EQ(values.size() * sizeof(T), bytes_);
    EXPECT_EQ(cudaMemcpy(data_, values.data(), bytes_, cudaMemcpyHostToDevice), cudaSuccess);
  }
  template <typename T>
  std::vector<T> download() const {
    std::vector<T> values(bytes_ / sizeof(T));
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(values.data(), data_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return values;
  }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// `bytes` of host memory copied into a new device buffer.
inline std::unique_ptr<DeviceBuffer> device_copy(const void* data, std::size_t bytes) {
  auto buffer = std::make_unique<DeviceBuffer>(bytes);
  EXPECT_EQ(cudaMemcpy(buffer->data(), data, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  return buffer;
}

}  // namespace chunktree::testing
