// Probe for the engine path's next lever (KERNEL_NOTES, session 24, "where the engine path's fixed
// cost goes"): CUDA-graph conditional nodes added inside a caller's stream capture, as
// PagedAttention::run would add them under torch's capture.
//  1. Can a kernel outside the graph (the plan's upload) set a handle's value for the graph's later
//     launches (handle made without cudaGraphCondAssignDefault)? Or must a kernel node of the
//     graph set it (the fallback, timed below too)?
//  2. What a launch costs: a graph of one kernel; of two; of one kernel and an IF node whose body
//     (one kernel) is skipped or taken; the same with a setter node in the graph.
// Session 25: session 24's probe with its first part behind `outside` (run 1 found that a kernel
// outside the graph setting the handle faults the context, so parts 2-3 run in a process of their own):
//   conditional_probe outside | conditional_probe inside
// Build here: nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a conditional_probe.cu -o conditional_probe
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    const cudaError_t result_ = (call);                                                \
    if (result_ != cudaSuccess) {                                                      \
      std::printf("%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(result_)); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

__global__ void mark(int* flag, int value) { *flag = value; }
__global__ void set_condition(cudaGraphConditionalHandle handle, unsigned value) { cudaGraphSetConditional(handle, value); }
__global__ void set_condition_from(cudaGraphConditionalHandle handle, const int* value) { cudaGraphSetConditional(handle, *value != 0); }

struct Probe {
  cudaGraphExec_t exec = nullptr;
  cudaGraphConditionalHandle handle = 0;
};

// mark(buf[0]) [, set_condition_from(*value)] , IF(handle) { mark(buf[1]) }, captured on `stream`
// the way a library adds its nodes to a caller's capture.
Probe capture_probe(cudaStream_t stream, cudaStream_t side, int* buf, const int* value, bool setter_in_graph) {
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  mark<<<1, 1, 0, stream>>>(buf, 1);
  cudaStreamCaptureStatus status;
  cudaGraph_t graph = nullptr;
  const cudaGraphNode_t* dependencies = nullptr;
  const cudaGraphEdgeData* edges = nullptr;
  std::size_t count = 0;
  CHECK(cudaStreamGetCaptureInfo(stream, &status, nullptr, &graph, &dependencies, &edges, &count));
  Probe probe;
  CHECK(cudaGraphConditionalHandleCreate(&probe.handle, graph, 0, 0));
  if (setter_in_graph) {
    set_condition_from<<<1, 1, 0, stream>>>(probe.handle, value);
    CHECK(cudaStreamGetCaptureInfo(stream, &status, nullptr, &graph, &dependencies, &edges, &count));
  }
  cudaGraphNodeParams params{};
  params.type = cudaGraphNodeTypeConditional;
  params.conditional.handle = probe.handle;
  params.conditional.type = cudaGraphCondTypeIf;
  params.conditional.size = 1;
  cudaGraphNode_t node = nullptr;
  CHECK(cudaGraphAddNode(&node, graph, dependencies, edges, count, &params));
  cudaGraph_t body = params.conditional.phGraph_out[0];
  CHECK(cudaStreamBeginCaptureToGraph(side, body, nullptr, nullptr, 0, cudaStreamCaptureModeRelaxed));
  mark<<<1, 1, 0, side>>>(buf + 1, 1);
  CHECK(cudaStreamEndCapture(side, &body));
  CHECK(cudaStreamUpdateCaptureDependencies(stream, &node, nullptr, 1, cudaStreamSetCaptureDependencies));
  cudaGraph_t captured = nullptr;
  CHECK(cudaStreamEndCapture(stream, &captured));
  CHECK(cudaGraphInstantiate(&probe.exec, captured, 0));
  return probe;
}

cudaGraphExec_t capture_marks(cudaStream_t stream, int* buf, int kernels) {
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (int k = 0; k < kernels; ++k) mark<<<1, 1, 0, stream>>>(buf + k, 1);
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  return exec;
}

// µs per launch of `exec`, 500 back to back, between events.
float micros_per_launch(cudaGraphExec_t exec, cudaStream_t stream) {
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 20; ++i) CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < 500; ++i) CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaEventRecord(stop, stream));
  CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  CHECK(cudaEventElapsedTime(&ms, start, stop));
  return ms * 1000.0f / 500.0f;
}

int main(int argc, char** argv) {
  const bool outside_part = argc > 1 && argv[1][0] == 'o';
  cudaStream_t stream, side;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  int* buf = nullptr;
  int* value = nullptr;
  CHECK(cudaMalloc(&buf, 4 * sizeof(int)));
  CHECK(cudaMalloc(&value, sizeof(int)));
  int host[2];

  // 1. The handle set from outside the graph, before each launch.
  const Probe outside = capture_probe(stream, side, buf, value, false);
  for (const unsigned condition : {1u, 0u, 1u, 0u}) {
    if (!outside_part) break;  // it faults the context: parts 2-3 in a process of their own
    CHECK(cudaMemsetAsync(buf, 0, 2 * sizeof(int), stream));
    set_condition<<<1, 1, 0, stream>>>(outside.handle, condition);
    const cudaError_t launched = cudaGetLastError();
    CHECK(cudaGraphLaunch(outside.exec, stream));
    const cudaError_t done = cudaStreamSynchronize(stream);
    CHECK(cudaMemcpy(host, buf, sizeof host, cudaMemcpyDeviceToHost));
    std::printf("set outside the graph to %u: setter %s, run %s, body %s\n", condition, cudaGetErrorString(launched),
                cudaGetErrorString(done), host[1] == 1 ? "ran" : "skipped");
    if (done != cudaSuccess) return 1;
  }

  // 2. The handle set by a node of the graph from a value the host writes before each launch.
  const Probe inside = capture_probe(stream, side, buf, value, true);
  for (const int condition : {1, 0, 1, 0}) {
    CHECK(cudaMemsetAsync(buf, 0, 2 * sizeof(int), stream));
    CHECK(cudaMemcpyAsync(value, &condition, sizeof condition, cudaMemcpyHostToDevice, stream));
    CHECK(cudaGraphLaunch(inside.exec, stream));
    CHECK(cudaStreamSynchronize(stream));
    CHECK(cudaMemcpy(host, buf, sizeof host, cudaMemcpyDeviceToHost));
    std::printf("set in the graph to %d: body %s\n", condition, host[1] == 1 ? "ran" : "skipped");
  }

  // 3. Costs per launch.
  std::printf("one kernel: %.2f us per launch\n", micros_per_launch(capture_marks(stream, buf, 1), stream));
  std::printf("two kernels: %.2f us\n", micros_per_launch(capture_marks(stream, buf, 2), stream));
  std::printf("three kernels: %.2f us\n", micros_per_launch(capture_marks(stream, buf, 3), stream));
  for (const int condition : {0, 1}) {
    CHECK(cudaMemcpy(value, &condition, sizeof condition, cudaMemcpyHostToDevice));
    std::printf("kernel + setter + IF %s: %.2f us\n", condition ? "taken" : "skipped", micros_per_launch(inside.exec, stream));
  }
  return 0;
}
