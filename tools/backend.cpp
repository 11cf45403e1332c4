#include "backend.hpp"

#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "gpu_buffer.hpp"

namespace chunktree::tools {
namespace {


void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(ErrorCode::cuda, std::string(what) + ": " + cudaGetErrorString(status));
}

// q in the cache's dtype, on the device.
GpuBuffer upload_query(const PrefixCache& cache, const ConstTensorView& q) {
  const DType dtype = cache.config().dtype;
  std::vector<std::byte> converted(static_cast<std::size_t>(q.numel()) * dtype_size(dtype));
  for (std::int64_t i = 0; i < q.numel(); ++i) store_element(converted.data(), dtype, i, load_element(q.data, q.dtype, i));
  GpuBuffer buffer(converted.size());
  check(cudaMemcpy(buffer.data(), converted.data(), converted.size(), cudaMemcpyHostToDevice), "copying q to the GPU");
  return buffer;
}

ConstTensorView device_view(const GpuBuffer& buffer, const PrefixCache& cache, const ConstTensorView& q) {
  return ConstTensorView(buffer.data(), cache.config().dtype, Device::cuda, q.shape);
}

}  // namespace

Backend select_backend(std::string_view name) {
  if (name == "cpu") return Backend::cpu;
  if (name == "auto") return hopper_visible() ? Backend::cuda : Backend::cpu;
  if (name == "cuda") {
    if (!hopper_visible()) throw Error(ErrorCode::unsupported, "--backend cuda: no Hopper GPU (sm_90) is visible; use --backend cpu");
    return Backend::cuda;
  }
  throw Error(ErrorCode::invalid_argument, "--backend must be cpu, cuda or auto, got '" + std::string(name) + "'");
}

std::string_view backend_name(Backend backend) { return backend == Backend::cpu ? "cpu" : "cuda"; }

Device backend_device(Backend backend) { return backend == Backend::cpu ? Device::cpu : Device::cuda; }

PartialStates backend_partial_states(Backend backend, const PrefixCache& cache, const Plan& plan, const ConstTensorView& q,
                                     const AttentionParams& params) {
  if (backend == Backend::cpu) return cpu::partial_states(cache, plan, 0, q, params);
  const GpuBuffer q_device = upload_query(cache, q);
  const cuda::DevicePlan device_plan(cache, plan, params);
  return cuda::partial_states(cache, device_plan, 0, device_view(q_device, cache, q));
}

void backend_attend(Backend backend, const PrefixCache& cache, const Plan& plan, const ConstTensorView& q,
                    const TensorView& out, const TensorView& lse, const AttentionParams& params) {
  if (backend == Backend::cpu) {
    cpu::attend(cache, plan, 0, q, out, lse, params);
    return;
  }
  const GpuBuffer q_device = upload_query(cache, q);
  const std::size_t out_bytes = static_cast<std::size_t>(out.numel()) * sizeof(float);
  const std::size_t lse_bytes = static_cast<std::size_t>(lse.numel()) * sizeof(float);
  const GpuBuffer out_device(out_bytes);
  const GpuBuffer lse_device(lse_bytes);
  // Poisoned (NaN): an element the kernels fail to write shows up in the comparison.
  check(cudaMemset(out_device.data(), 0xff, out_bytes), "poisoning out");
  check(cudaMemset(lse_device.data(), 0xff, lse_bytes), "poisoning lse");
  const cuda::DevicePlan device_plan(cache, plan, params);
  cuda::attend(cache, device_plan, 0, device_view(q_device, cache, q), TensorView{out_device.data(), DType::f32, Device::cuda, out.shape},
               TensorView{lse_device.data(), DType::f32, Device::cuda, lse.shape});
  check(cudaMemcpy(out.data, out_device.data(), out_bytes, cudaMemcpyDeviceToHost), "copying out back");
  check(cudaMemcpy(lse.data, lse_device.data(), lse_bytes, cudaMemcpyDeviceToHost), "copying lse back");
}

}  // namespace chunktree::tools
