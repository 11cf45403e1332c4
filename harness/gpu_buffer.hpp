// A device allocation with one owner (a backend run's queries and outputs, benchmark data).
#pragma once

#include <cstddef>

namespace chunktree::harness {

class GpuBuffer {
 public:
  explicit GpuBuffer(std::size_t bytes);  // throws Error (cuda) when cudaMalloc fails
  ~GpuBuffer();
  GpuBuffer(GpuBuffer&& other) noexcept;
  GpuBuffer(const GpuBuffer&) = delete;
  GpuBuffer& operator=(const GpuBuffer&) = delete;
  GpuBuffer& operator=(GpuBuffer&&) = delete;

  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
};

}  // namespace chunktree::harness
