// Checking CUDA runtime calls: every call and every launch goes through this.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "chunktree/types.hpp"

namespace chunktree {

// A failed call also leaves its error as the runtime's last error; clearing it here keeps a later,
// unrelated check (a launch's cudaGetLastError) from reporting it a second time. A sticky error
// (the context is lost) stays whatever is cleared.
[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  (void)cudaGetLastError();
  throw Error(ErrorCode::cuda, std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                                   cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

}  // namespace chunktree

#define CHUNKTREE_CUDA_CHECK(call)                                                       \
  do {                                                                                   \
    const cudaError_t chunktree_status_ = (call);                                        \
    if (chunktree_status_ != cudaSuccess) {                                              \
      ::chunktree::throw_cuda_error(chunktree_status_, #call, __FILE__, __LINE__);       \
    }                                                                                    \
  } while (false)
