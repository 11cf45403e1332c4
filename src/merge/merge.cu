// The merge primitives on the GPU: one block per (token, head), one thread per dim.
#include <cuda_runtime.h>

#include "runtime/check.cuh"
#include "merge/merge_job.hpp"

namespace chunktree::merging {
namespace {

__global__ void merge_kernel(const MergeJob job) {
  const std::int64_t token = blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  float lse = 0.0f;
  float o[2];
  // At most two dims per thread (head_dim ≤ 512 with 256 threads); every read before any write.
  int count = 0;
  for (int dim = static_cast<int>(threadIdx.x); dim < job.head_dim; dim += static_cast<int>(blockDim.x)) o[count++] = merge_element(job, token, head, dim, lse);
  __syncthreads();  // out may alias an input: the lse below must not be overwritten while others read it
  count = 0;
  for (int dim = static_cast<int>(threadIdx.x); dim < job.head_dim; dim += static_cast<int>(blockDim.x)) {
    store_element(job.out_o, job.out_dtype, (token * job.heads + head) * job.head_dim + dim, o[count++]);
  }
  if (threadIdx.x == 0) job.out_lse[token * job.heads + head] = lse;
}

}  // namespace

// The caller (src/merge/merge.cpp) has checked the tensors, their device pointers and the GPU.
void merge_on_gpu(const MergeJob& job, void* stream) {
  if (job.head_dim > 512) throw Error(ErrorCode::unsupported, "merge: head_dim above 512 is not supported on the GPU");
  const dim3 grid(static_cast<unsigned>(job.tokens), static_cast<unsigned>(job.heads));
  const unsigned threads = job.head_dim < 256 ? static_cast<unsigned>(job.head_dim) : 256u;
  merge_kernel<<<grid, threads, 0, static_cast<cudaStream_t>(stream)>>>(job);
  const cudaError_t launched = cudaGetLastError();
  if (launched == cudaErrorNoKernelImageForDevice) {
    throw Error(ErrorCode::unsupported, "merge: this build's kernels run on Hopper GPUs (sm_90a) only; merge on the CPU");
  }
  CHUNKTREE_CUDA_CHECK(launched);
}

}  // namespace chunktree::merging
