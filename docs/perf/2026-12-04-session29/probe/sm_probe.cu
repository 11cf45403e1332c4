// Session 29's diagnostic (not part of the library): on which SM does each CTA of a grid land, for a
// kernel of the mma.sync states kernel's shape (256 threads, 115.6 KB of dynamic shared memory: two
// CTAs per SM)? Prints, per grid size, how many SMs the first k CTAs occupy, and the first CTAs' SMs.
#include <cstdio>
#include <vector>
#include <cuda_runtime.h>

__global__ void where(unsigned* sm_of, long long spin) {
  extern __shared__ unsigned char scratch[];
  if (threadIdx.x == 0) {
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));  // diagnostic only: no CUDA or CuTe call reads it
    sm_of[blockIdx.x] = sm;
    scratch[0] = 1;
  }
  const long long start = clock64();
  while (clock64() - start < spin) {}
}

int main() {
  const int smem = 115600;
  cudaFuncSetAttribute(where, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  unsigned* d = nullptr;
  cudaMalloc(&d, 4096 * sizeof(unsigned));
  for (int grid : {128, 132, 200, 256, 264, 1024}) {
    where<<<grid, 256, smem>>>(d, 2000000);  // ~1 ms: every CTA of the first wave is resident at once
    if (cudaDeviceSynchronize() != cudaSuccess) { std::printf("launch failed\n"); return 1; }
    std::vector<unsigned> sm(grid);
    cudaMemcpy(sm.data(), d, grid * sizeof(unsigned), cudaMemcpyDeviceToHost);
    std::printf("grid %d:", grid);
    for (int k : {32, 64, 128, 132, 200, 256, 264}) {
      if (k > grid) break;
      std::vector<int> used(sms, 0);
      int distinct = 0;
      for (int b = 0; b < k; ++b) distinct += used[sm[b]]++ == 0;
      std::printf("  first %d CTAs on %d SMs;", k, distinct);
    }
    std::printf("\n  CTA:SM of the first 24:");
    for (int b = 0; b < 24 && b < grid; ++b) std::printf(" %d:%u", b, sm[b]);
    std::printf("\n");
  }
  return 0;
}
