// A host-only stand-in for the CUDA runtime: memory is host memory, launches do nothing, and every
// call succeeds. It exists only to profile chunktree's host code (no driver cost is in it).
#include <cuda_runtime.h>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <map>
#include <string>
// Built with -DCOUNT_CALLS, every function counts its calls (stub_reset, stub_print); otherwise note() is
// empty, so that timings carry no counting.
static std::map<std::string, long>& counts() { static std::map<std::string, long> c; return c; }
#ifdef COUNT_CALLS
static void note(const char* f) { ++counts()[f]; }
#else
static void note(const char*) {}
#endif
extern "C" void stub_reset() { counts().clear(); }
extern "C" void stub_print(const char* what, int per) { std::printf("%s:", what); for (auto& [f, n] : counts()) std::printf(" %s %.1f", f.c_str(), double(n) / per); std::printf("\n"); }
extern "C" {
cudaError_t cudaGetDeviceCount(int* c) { note(__func__); *c = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { note(__func__); *d = 0; return cudaSuccess; }
cudaError_t cudaSetDevice(int) { note(__func__); return cudaSuccess; }
cudaError_t cudaGetDeviceProperties_v2(cudaDeviceProp* p, int) { note(__func__); std::memset(p, 0, sizeof(*p)); std::strcpy(p->name, "stub H100"); p->major = 9; p->minor = 0; p->multiProcessorCount = 132; p->totalGlobalMem = 80ull << 30; p->l2CacheSize = 50 << 20; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) { return cudaGetDeviceProperties_v2(p, d); }
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  switch (a) { case cudaDevAttrMultiProcessorCount: *v = 132; break; case cudaDevAttrMemoryClockRate: *v = 2619000; break;
    case cudaDevAttrGlobalMemoryBusWidth: *v = 5120; break; default: *v = 0; }
  return cudaSuccess; }
cudaError_t cudaMalloc(void** p, size_t n) { note(__func__); *p = std::aligned_alloc(256, (n + 255) / 256 * 256 + 256); return cudaSuccess; }
cudaError_t cudaMallocHost(void** p, size_t n) { note(__func__); return cudaMalloc(p, n); }
cudaError_t cudaFree(void* p) { note(__func__); std::free(p); return cudaSuccess; }
cudaError_t cudaFreeHost(void* p) { note(__func__); std::free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind k) {
  if (k == cudaMemcpyDeviceToHost && n == sizeof(int)) { int v = 0x5eed; std::memcpy(d, &v, n); return cudaSuccess; }
  std::memcpy(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) { note(__func__); std::memcpy(d, s, n); return cudaSuccess; }
cudaError_t cudaMemset(void* d, int v, size_t n) { note(__func__); std::memset(d, v, n); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t) { note(__func__); std::memset(d, v, n); return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { note(__func__); return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { note(__func__); *e = reinterpret_cast<cudaEvent_t>(new char); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { note(__func__); delete reinterpret_cast<char*>(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { note(__func__); return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { note(__func__); return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { note(__func__); *s = reinterpret_cast<cudaStream_t>(new char); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { note(__func__); delete reinterpret_cast<char*>(s); return cudaSuccess; }
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* s) { note(__func__); *s = cudaStreamCaptureStatusNone; return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { note(__func__); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { note(__func__); return cudaSuccess; }
cudaError_t cudaGetLastError() { note(__func__); return cudaSuccess; }
cudaError_t cudaPeekAtLastError() { note(__func__); return cudaSuccess; }
const char* cudaGetErrorName(cudaError_t) { note(__func__); return "stub"; }
const char* cudaGetErrorString(cudaError_t) { note(__func__); return "stub"; }
cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { note(__func__); return cudaSuccess; }
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* b, const void*, int, size_t) { note(__func__); *b = 2; return cudaSuccess; }
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void*) { note(__func__); std::memset(a, 0, sizeof(*a)); a->type = cudaMemoryTypeDevice; return cudaSuccess; }
cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t*, const void*, void**) { note(__func__); return cudaSuccess; }
cudaError_t cudaLaunchKernel(const void*, dim3, dim3, void**, size_t, cudaStream_t) { note(__func__); return cudaSuccess; }
static int driver_call_succeeds(...) { return 0; }  // any driver entry point (cuTensorMapEncodeTiled): CUDA_SUCCESS
cudaError_t cudaGetDriverEntryPointByVersion(const char*, void** f, unsigned, unsigned long long, cudaDriverEntryPointQueryResult* r) { note(__func__); *f = reinterpret_cast<void*>(&driver_call_succeeds); if (r) *r = cudaDriverEntryPointSuccess; return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int* v) { note(__func__); *v = 13000; return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) { note(__func__); return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) { note(__func__); *ms = 0.001f; return cudaSuccess; }
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) { note(__func__); return cudaSuccess; }
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* g) { note(__func__); *g = reinterpret_cast<cudaGraph_t>(new char); return cudaSuccess; }
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t, unsigned long long) { note(__func__); *e = reinterpret_cast<cudaGraphExec_t>(new char); return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t) { note(__func__); return cudaSuccess; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { note(__func__); delete reinterpret_cast<char*>(e); return cudaSuccess; }
cudaError_t cudaGraphDestroy(cudaGraph_t g) { note(__func__); delete reinterpret_cast<char*>(g); return cudaSuccess; }
void** __cudaRegisterFatBinary(void*) { note(__func__); static void* h = nullptr; return &h; }
void __cudaRegisterFatBinaryEnd(void**) {}
void __cudaUnregisterFatBinary(void**) {}
void __cudaRegisterFunction(void**, const char*, char*, const char*, int, uint3*, uint3*, dim3*, dim3*, int*) {}
void __cudaRegisterVar(void**, char*, char*, const char*, int, size_t, int, int) {}
unsigned __cudaPushCallConfiguration(dim3, dim3, size_t, void*) { note(__func__); return 0; }
cudaError_t __cudaPopCallConfiguration(dim3*, dim3*, size_t*, void*) { note(__func__); return cudaSuccess; }
cudaError_t __cudaLaunchKernel(const void*, dim3, dim3, void**, size_t, cudaStream_t) { note(__func__); return cudaSuccess; }
cudaError_t __cudaGetKernel(cudaKernel_t* k, const void* f) { note(__func__); *k = (cudaKernel_t)f; return cudaSuccess; }
}
