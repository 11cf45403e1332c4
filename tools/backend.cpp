#include "backend.hpp"

#include <string>

#include "chunktree/types.hpp"

namespace chunktree::tools {

Backend select_backend(std::string_view name) {
  if (name == "cpu" || name == "auto") return Backend::cpu;  // the CUDA backend does not exist yet
  if (name == "cuda") {
    throw Error(ErrorCode::unsupported, "--backend cuda: this build has no CUDA attention backend yet; use --backend cpu");
  }
  throw Error(ErrorCode::invalid_argument, "--backend must be cpu, cuda or auto, got '" + std::string(name) + "'");
}

std::string_view backend_name(Backend backend) { return backend == Backend::cpu ? "cpu" : "cuda"; }

}  // namespace chunktree::tools
