#include "bench/gpu_measure.hpp"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

namespace chunktree::tools {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(ErrorCode::cuda, std::string("bench: ") + what + ": " + cudaGetErrorString(status));
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(ErrorCode::cuda, std::string("bench: ") + what + ": cuBLAS status " + std::to_string(static_cast<int>(status)));
  }
}

__device__ std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

// Sum of four uniforms, centred and scaled: close enough to N(0,1) for benchmark data.
template <typename Element>
__global__ void fill_random_kernel(Element* data, std::int64_t count, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::uint64_t bits = mix(seed ^ mix(static_cast<std::uint64_t>(i)));
    float sum = 0.0f;
    for (int k = 0; k < 4; ++k) sum += static_cast<float>((bits >> (16 * k)) & 0xffffu) * (1.0f / 65536.0f);
    float value = (sum - 2.0f) * 1.7320508f;
    if (value == 0.0f) value = 0.5f;
    if constexpr (std::is_same_v<Element, __nv_bfloat16>) {
      data[i] = __float2bfloat16_rn(value);
    } else {
      data[i] = __float2half_rn(value);
    }
  }
}

// Reads the whole buffer once with 16-byte loads, `Loads` of them issued before any is used; the
// XOR keeps the loads alive.
template <int Loads>
__global__ void read_kernel(const uint4* data, std::int64_t count, unsigned* sink) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  unsigned acc = 0;
  for (; i + (Loads - 1) * stride < count; i += Loads * stride) {
    uint4 v[Loads];
#pragma unroll
    for (int l = 0; l < Loads; ++l) v[l] = data[i + l * stride];
#pragma unroll
    for (int l = 0; l < Loads; ++l) acc ^= v[l].x ^ v[l].y ^ v[l].z ^ v[l].w;
  }
  for (; i < count; i += stride) {
    const uint4 v = data[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

__global__ void overwrite_kernel(uint4* data, std::int64_t count, unsigned value) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    data[i] = make_uint4(value, value, value, value);
  }
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Milliseconds of each of `repeats` runs of launch(), after `warmups` untimed ones.
template <typename Launch>
std::vector<double> event_times(int warmups, int repeats, Launch launch) {
  cudaEvent_t start;
  cudaEvent_t stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int w = 0; w < warmups; ++w) launch();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    check(cudaEventRecord(start), "cudaEventRecord");
    launch();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return times;
}

}  // namespace

CardInfo card_info() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  CardInfo info;
  info.name = properties.name;
  info.multiprocessors = properties.multiProcessorCount;
  info.l2_bytes = properties.l2CacheSize;
  std::ifstream version("/proc/driver/nvidia/version");
  std::string line;
  std::smatch match;
  if (std::getline(version, line) && std::regex_search(line, match, std::regex("([0-9]+\\.[0-9]+(\\.[0-9]+)?)"))) {
    info.driver = match[1];
  } else {
    int driver = 0;
    cudaDriverGetVersion(&driver);
    info.driver = "cuda " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10);
  }
  return info;
}

void fill_random(void* device_data, DType dtype, std::int64_t count, std::uint64_t seed) {
  const int blocks = 1024;
  if (dtype == DType::bf16) {
    fill_random_kernel<<<blocks, 256>>>(static_cast<__nv_bfloat16*>(device_data), count, seed);
  } else {
    fill_random_kernel<<<blocks, 256>>>(static_cast<__half*>(device_data), count, seed);
  }
  check(cudaGetLastError(), "fill_random");
}


void launch_hbm_read(const void* data, std::int64_t bytes, unsigned* sink, int multiprocessors, void* stream) {
  read_kernel<8><<<multiprocessors * 2, 1024, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<const uint4*>(data), (bytes + 15) / 16, sink);
  check(cudaGetLastError(), "read_kernel");
}

// The HBM ceiling is the highest of six medians: three read kernels (1, 4 and 8 loads in flight per
// thread) over each of two 4 GiB buffers, each median of 30 reads after ~100 ms of the same reads.
// The benchmark starts from an idle GPU, and ten reads after one warm-up once read 4.16 TB/s on a
// card that reads ~4.5 (KERNEL_NOTES, session 27); one kernel over one buffer, even warmed, read
// 4.17-4.23 TB/s in four committed runs whose own rows read faster than that (session 31), which
// lowers every floor. A ceiling is what the card can be shown to read, so the fastest reading wins.
// The tensor ceiling keeps one warm-up and 10 GEMMs (~15 ms): after 100 (140 ms) the card is at
// its power limit, 652-661 TFLOP/s against 766-784, a rate no timed row (a few ms after 250 ms
// idle) runs at.
constexpr int kHbmWarmups = 100;  // 4 GiB reads of ~1 ms each
constexpr int kHbmRepeats = 30;
constexpr int kGemmWarmups = 1;
constexpr int kGemmRepeats = 10;

Ceilings measure_ceilings() {
  Ceilings ceilings;
  const CardInfo card = card_info();
  {
    const std::int64_t bytes = std::int64_t{4} << 30;
    const std::int64_t vectors = bytes / 16;
    harness::GpuBuffer sink(sizeof(unsigned));
    auto* const sink_word = static_cast<unsigned*>(sink.data());
    for (std::uint64_t seed : {1, 2}) {
      harness::GpuBuffer buffer(static_cast<std::size_t>(bytes));
      fill_random(buffer.data(), DType::bf16, bytes / 2, seed);
      const auto* data = static_cast<const uint4*>(buffer.data());
      const std::vector<std::function<void()>> reads = {
          [&] { read_kernel<1><<<card.multiprocessors * 8, 512>>>(data, vectors, sink_word); },
          [&] { read_kernel<4><<<card.multiprocessors * 8, 512>>>(data, vectors, sink_word); },
          [&] { launch_hbm_read(data, bytes, sink_word, card.multiprocessors, nullptr); },
      };
      for (const auto& read : reads) {
        const double ms = median(event_times(kHbmWarmups, kHbmRepeats, read));
        check(cudaGetLastError(), "read_kernel");
        ceilings.hbm_reads.push_back(static_cast<double>(bytes) / (ms * 1e-3));
        ceilings.hbm_bytes_per_s = std::max(ceilings.hbm_bytes_per_s, ceilings.hbm_reads.back());
      }
    }
  }
  {
    const int n = 8192;
    const std::size_t elements = static_cast<std::size_t>(n) * n;
    harness::GpuBuffer a(elements * 2);
    harness::GpuBuffer b(elements * 2);
    harness::GpuBuffer c(elements * 2);
    fill_random(a.data(), DType::bf16, static_cast<std::int64_t>(elements), 2);
    fill_random(b.data(), DType::bf16, static_cast<std::int64_t>(elements), 3);
    cublasHandle_t handle;
    check(cublasCreate(&handle), "cublasCreate");
    const float alpha = 1.0f;
    const float beta = 0.0f;
    const std::vector<double> ms = event_times(kGemmWarmups, kGemmRepeats, [&] {
      check(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.data(), CUDA_R_16BF, n, b.data(), CUDA_R_16BF, n, &beta,
                         c.data(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    });
    cublasDestroy(handle);
    ceilings.bf16_flops_per_s = 2.0 * n * static_cast<double>(n) * n / (median(ms) * 1e-3);
  }
  return ceilings;
}

__global__ void touch_kernel(const uint4* from, uint4* to) { *to = *from; }

CallFloors measure_call_floors(bool cold_l2, int settle_ms) {
  harness::GpuBuffer data(2 * sizeof(uint4));
  check(cudaMemset(data.data(), 1, 2 * sizeof(uint4)), "cudaMemset");
  const auto* from = static_cast<const uint4*>(data.data());
  auto* to = static_cast<uint4*>(data.data()) + 1;
  const auto median_of = [&](int launches) {
    const Timing timing = time_on_gpu(
        [&](void* stream) {
          for (int l = 0; l < launches; ++l) touch_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(from, to);
          check(cudaGetLastError(), "touch_kernel");
        },
        5, 30, cold_l2, settle_ms);
    return median(timing.microseconds);
  };
  return CallFloors{median_of(1), median_of(2)};
}

Timing time_on_gpu(const std::function<void(void* stream)>& run, int warmups, int repeats, bool cold_l2, int settle_ms) {
  // Only the L2 size and SM count are needed here; card_info() would also read the driver file.
  int device = 0;
  int l2_bytes = 0;
  int multiprocessors = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  const std::int64_t flush_bytes = 2 * static_cast<std::int64_t>(l2_bytes);
  harness::GpuBuffer flush(static_cast<std::size_t>(flush_bytes));
  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  for (int w = 0; w < warmups; ++w) run(stream);
  check(cudaStreamSynchronize(stream), "warm-up");

  Timing timing;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t graph_exec = nullptr;
  if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) == cudaSuccess) {
    bool captured = true;
    try {
      run(stream);
    } catch (const Error&) {
      captured = false;
    }
    captured = cudaStreamEndCapture(stream, &graph) == cudaSuccess && captured;
    captured = captured && cudaGraphInstantiate(&graph_exec, graph, 0) == cudaSuccess;
    timing.graph = captured;
  }
  cudaGetLastError();  // a failed capture leaves an error behind; the eager path takes over

  cudaEvent_t start;
  cudaEvent_t stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
  for (int r = 0; r < repeats; ++r) {
    if (cold_l2) {
      overwrite_kernel<<<multiprocessors * 4, 512, 0, stream>>>(static_cast<uint4*>(flush.data()), flush_bytes / 16,
                                                                      static_cast<unsigned>(r));
      check(cudaGetLastError(), "L2 flush");
    }
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    if (timing.graph) {
      check(cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch");
    } else {
      run(stream);
    }
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    timing.microseconds.push_back(ms * 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (graph_exec != nullptr) cudaGraphExecDestroy(graph_exec);
  if (graph != nullptr) cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return timing;
}

}  // namespace chunktree::tools
