// One transfer per load: the host packs a load's tables back to back in pinned memory and copies
// them to the device at once; this kernel then moves each table to its section of the workspace,
// at the fixed address that launches a CUDA graph captured read (src/cuda/device_work.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace chunktree::kernels {

// Byte offsets in the workspace, multiples of 16; bytes is rounded up to 16 (sections are sized
// in multiples of 16 bytes, so the rounding writes no other section).
struct SectionCopy {
  std::uint64_t from;
  std::uint64_t to;
  std::uint64_t bytes;
};

struct ScatterArgs {
  static constexpr int kMaxCopies = 8;
  std::byte* workspace;
  SectionCopy copies[kMaxCopies];
  int count;
};

void launch_scatter_sections(const ScatterArgs& args, cudaStream_t stream);

}  // namespace chunktree::kernels
