#include "kernels/scatter_sections.cuh"

#include "runtime/check.cuh"

namespace chunktree::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerCopy = 8;  // ~100 KB per section at most in a decode step: a few µs of one SM each

// Block (x, y) moves 16-byte words x·kThreads + thread, then every kBlocksPerCopy·kThreads-th, of copy y.
__global__ void __launch_bounds__(kThreads) scatter_sections_kernel(const ScatterArgs args) {
  const SectionCopy copy = args.copies[blockIdx.y];
  const auto* from = reinterpret_cast<const uint4*>(args.workspace + copy.from);
  auto* to = reinterpret_cast<uint4*>(args.workspace + copy.to);
  const std::uint64_t words = (copy.bytes + 15) / 16;
  for (std::uint64_t w = blockIdx.x * kThreads + threadIdx.x; w < words; w += kBlocksPerCopy * kThreads) to[w] = from[w];
}

}  // namespace

void launch_scatter_sections(const ScatterArgs& args, cudaStream_t stream) {
  if (args.count == 0) return;
  scatter_sections_kernel<<<dim3(kBlocksPerCopy, static_cast<unsigned>(args.count)), kThreads, 0, stream>>>(args);
  CHUNKTREE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace chunktree::kernels
