#include "harness/backend.hpp"

#include <cuda_runtime.h>

#include <map>
#include <string>
#include <vector>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/numeric.hpp"
#include "harness/gpu_buffer.hpp"

namespace chunktree::harness {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(ErrorCode::cuda, std::string(what) + ": " + cudaGetErrorString(status));
}

// Host data converted to `dtype`, on the device.
GpuBuffer upload_as(DType dtype, const ConstTensorView& q) {
  std::vector<std::byte> converted(static_cast<std::size_t>(q.numel()) * dtype_size(dtype));
  for (std::int64_t i = 0; i < q.numel(); ++i) store_element(converted.data(), dtype, i, load_element(q.data, q.dtype, i));
  GpuBuffer buffer(converted.size());
  check(cudaMemcpy(buffer.data(), converted.data(), converted.size(), cudaMemcpyHostToDevice), "copying q to the GPU");
  return buffer;
}

GpuBuffer upload_query(const PrefixCache& cache, const ConstTensorView& q) { return upload_as(cache.config().dtype, q); }

ConstTensorView device_view(const GpuBuffer& buffer, const PrefixCache& cache, const ConstTensorView& q) {
  return ConstTensorView(buffer.data(), cache.config().dtype, Device::cuda, q.shape);
}

// Device outputs poisoned (NaN): an element the kernels fail to write shows up in the comparison.
struct DeviceOutputs {
  GpuBuffer out;
  GpuBuffer lse;
  explicit DeviceOutputs(const TensorView& host_out, const TensorView& host_lse)
      : out(static_cast<std::size_t>(host_out.numel()) * sizeof(float)), lse(static_cast<std::size_t>(host_lse.numel()) * sizeof(float)) {
    check(cudaMemset(out.data(), 0xff, static_cast<std::size_t>(host_out.numel()) * sizeof(float)), "poisoning out");
    check(cudaMemset(lse.data(), 0xff, static_cast<std::size_t>(host_lse.numel()) * sizeof(float)), "poisoning lse");
  }
  void download(const TensorView& host_out, const TensorView& host_lse) const {
    check(cudaMemcpy(host_out.data, out.data(), static_cast<std::size_t>(host_out.numel()) * sizeof(float), cudaMemcpyDeviceToHost),
          "copying out back");
    check(cudaMemcpy(host_lse.data, lse.data(), static_cast<std::size_t>(host_lse.numel()) * sizeof(float), cudaMemcpyDeviceToHost),
          "copying lse back");
  }
};

}  // namespace

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
  const DeviceOutputs device(out, lse);
  const cuda::DevicePlan device_plan(cache, plan, params);
  cuda::attend(cache, device_plan, 0, device_view(q_device, cache, q), TensorView{device.out.data(), DType::f32, Device::cuda, out.shape},
               TensorView{device.lse.data(), DType::f32, Device::cuda, lse.shape});
  device.download(out, lse);
}

void backend_attend_levels(Backend backend, const Levels& levels, const ConstTensorView& q, const TensorView& out,
                           const TensorView& lse, const AttentionParams& params) {
  if (backend == Backend::cpu) {
    cpu::attend_levels(levels, q, out, lse, params);
    return;
  }
  // Every distinct host buffer once on the device; the levels again with device views.
  std::map<const void*, GpuBuffer> copies;
  const auto on_device = [&](const ConstTensorView& view) {
    auto found = copies.find(view.data);
    if (found == copies.end()) {
      GpuBuffer buffer(static_cast<std::size_t>(view.numel()) * dtype_size(view.dtype));
      check(cudaMemcpy(buffer.data(), view.data, static_cast<std::size_t>(view.numel()) * dtype_size(view.dtype), cudaMemcpyHostToDevice),
            "copying KV to the GPU");
      found = copies.emplace(view.data, std::move(buffer)).first;
    }
    return ConstTensorView(found->second.data(), view.dtype, Device::cuda, view.shape);
  };
  const auto segment_on_device = [&](const KvSegment& segment) {
    KvSegment copy = segment;
    if (segment.length > 0) {
      copy.k = on_device(segment.k);
      copy.v = on_device(segment.v);
    }
    return copy;
  };
  Levels device_levels;
  device_levels.queries_per_seq = levels.queries_per_seq;
  DType kv_dtype = DType::bf16;
  for (const auto& level : levels.levels) {
    device_levels.levels.emplace_back();
    for (const SharedSegment& segment : level) {
      device_levels.levels.back().push_back(SharedSegment{segment_on_device(segment.kv), segment.seq_begin, segment.seq_end});
      kv_dtype = segment.kv.k.dtype;
    }
  }
  for (const KvSegment& own : levels.own) {
    device_levels.own.push_back(segment_on_device(own));
    if (own.length > 0) kv_dtype = own.k.dtype;
  }
  const GpuBuffer q_device = upload_as(kv_dtype, q);
  const ConstTensorView q_view(q_device.data(), kv_dtype, Device::cuda, q.shape);
  const DeviceOutputs device(out, lse);
  const cuda::LevelsPlan plan(device_levels, q_view, params);
  cuda::attend_levels(plan, q_view, TensorView{device.out.data(), DType::f32, Device::cuda, out.shape},
                      TensorView{device.lse.data(), DType::f32, Device::cuda, lse.shape});
  device.download(out, lse);
}

}  // namespace chunktree::harness
