#include <cuda_runtime.h>

#include <string>

#include "chunktree/device.hpp"
#include "chunktree/types.hpp"
#include "runtime/check.cuh"

namespace chunktree {
namespace {

// Writes a known value: proves that this build's sm_90a code loads and runs on the device.
__global__ void probe_kernel(int* out) { *out = 0x5eed; }

}  // namespace

std::vector<CudaDevice> cuda_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error and report none
    return {};
  }
  std::vector<CudaDevice> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp properties{};
    CHUNKTREE_CUDA_CHECK(cudaGetDeviceProperties(&properties, i));
    devices.push_back(CudaDevice{i, properties.name, properties.major, properties.minor, properties.multiProcessorCount,
                                 properties.totalGlobalMem, static_cast<std::size_t>(properties.l2CacheSize)});
  }
  return devices;
}

bool hopper_visible() {
  for (const CudaDevice& device : cuda_devices()) {
    if (device.major == 9 && device.minor == 0) return true;
  }
  return false;
}

void require_hopper(int device) {
  const std::vector<CudaDevice> devices = cuda_devices();
  if (devices.empty()) throw Error(ErrorCode::unsupported, "no CUDA device is visible; use the CPU backend");
  if (device < 0 || device >= static_cast<int>(devices.size())) {
    throw Error(ErrorCode::invalid_argument, "CUDA device " + std::to_string(device) + " does not exist; " +
                                                 std::to_string(devices.size()) + " are visible");
  }
  const CudaDevice& found = devices[static_cast<std::size_t>(device)];
  if (found.major != 9 || found.minor != 0) {
    throw Error(ErrorCode::unsupported, "CUDA device " + std::to_string(device) + " (" + found.name + ") has compute capability " +
                                            std::to_string(found.major) + "." + std::to_string(found.minor) +
                                            "; chunktree's kernels need a Hopper GPU (9.0): use the CPU backend");
  }
  CHUNKTREE_CUDA_CHECK(cudaSetDevice(device));
  int* value = nullptr;
  CHUNKTREE_CUDA_CHECK(cudaMalloc(&value, sizeof(int)));
  probe_kernel<<<1, 1>>>(value);
  int host = 0;
  const cudaError_t launched = cudaGetLastError();
  const cudaError_t copied = cudaMemcpy(&host, value, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(value);
  CHUNKTREE_CUDA_CHECK(launched);
  CHUNKTREE_CUDA_CHECK(copied);
  if (host != 0x5eed) throw Error(ErrorCode::cuda, "the device probe kernel did not run correctly");
}

}  // namespace chunktree
