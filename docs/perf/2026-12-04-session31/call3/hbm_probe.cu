// Which read kernel reads HBM fastest, and does it vary with the allocation? (session 31 probe)
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)
__global__ void fill(uint4* d, int64_t n) { for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) d[i] = make_uint4(i, i * 3, i * 7, i ^ 5); }
__global__ void read1(const uint4* d, int64_t n, unsigned* s) {
  unsigned a = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) { uint4 v = d[i]; a ^= v.x ^ v.y ^ v.z ^ v.w; }
  if (a == 0x12345678u) *s = a;
}
template <int U>
__global__ void readU(const uint4* d, int64_t n, unsigned* s) {
  unsigned a = 0;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  for (; i + (U - 1) * stride < n; i += U * stride) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = d[i + u * stride];
#pragma unroll
    for (int u = 0; u < U; ++u) a ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) { uint4 v = d[i]; a ^= v.x ^ v.y ^ v.z ^ v.w; }
  if (a == 0x12345678u) *s = a;
}
template <class F> double med(F f, int warm, int rep, double* lo, double* hi) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int w = 0; w < warm; ++w) f();
  std::vector<double> t;
  for (int r = 0; r < rep; ++r) { cudaEventRecord(a); f(); cudaEventRecord(b); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms, a, b); t.push_back(ms); }
  std::sort(t.begin(), t.end()); *lo = t.front(); *hi = t.back(); return t[t.size() / 2];
}
int main() {
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int64_t big = int64_t{4} << 30;
  uint4 *b1, *b2; unsigned* s;
  CK(cudaMalloc(&b1, big)); CK(cudaMalloc(&b2, big)); CK(cudaMalloc(&s, 4));
  fill<<<1024, 256>>>(b1, big / 16); fill<<<1024, 256>>>(b2, big / 16); CK(cudaDeviceSynchronize());
  struct V { const char* name; int grid, block, unroll; };
  V vs[] = {{"current sms*8x512 u1", sms * 8, 512, 1}, {"sms*4x512 u4", sms * 4, 512, 4}, {"sms*8x512 u4", sms * 8, 512, 4},
            {"sms*2x1024 u8", sms * 2, 1024, 8}, {"sms*16x256 u2", sms * 16, 256, 2}, {"sms*32x128 u4", sms * 32, 128, 4}};
  for (int round = 0; round < 3; ++round)
    for (int buf = 0; buf < 2; ++buf)
      for (int64_t bytes : {big, big / 4})
        for (const V& v : vs) {
          const uint4* d = buf ? b2 : b1; const int64_t n = bytes / 16;
          auto f = [&] {
            if (v.unroll == 1) read1<<<v.grid, v.block>>>(d, n, s);
            else if (v.unroll == 2) readU<2><<<v.grid, v.block>>>(d, n, s);
            else if (v.unroll == 4) readU<4><<<v.grid, v.block>>>(d, n, s);
            else readU<8><<<v.grid, v.block>>>(d, n, s);
          };
          double lo, hi; const int warm = bytes == big ? 100 : 400;
          double m = med(f, warm, 30, &lo, &hi);
          printf("round %d buf %d %4lld MiB %-22s median %.3f TB/s (best %.3f worst %.3f)\n", round, buf, (long long)(bytes >> 20), v.name,
                 bytes / (m * 1e-3) / 1e12, bytes / (lo * 1e-3) / 1e12, bytes / (hi * 1e-3) / 1e12);
        }
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  return 0;
}
