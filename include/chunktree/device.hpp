// Which CUDA devices this process can use.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace chunktree {

struct CudaDevice {
  int index = 0;
  std::string name;
  int major = 0;  // compute capability
  int minor = 0;
  int multiprocessors = 0;
  std::size_t memory_bytes = 0;
  std::size_t l2_bytes = 0;
};

// The visible CUDA devices; empty (not an error) on a machine without a GPU or driver.
std::vector<CudaDevice> cuda_devices();

// True when some visible device is a Hopper GPU (compute capability 9.0).
bool hopper_visible();

// Throws unsupported unless `device` exists and is a Hopper GPU (sm_90) that runs this
// build's kernels; the message says what was found instead.
void require_hopper(int device = 0);

}  // namespace chunktree
