// Which backend a command runs on.
#pragma once

#include <string_view>

namespace chunktree::tools {

enum class Backend { cpu, cuda };

// "cpu", "cuda" or "auto" (the GPU when this build can run on one, else the CPU). Throws an
// Error that says what to use instead when the choice is unknown or unavailable.
Backend select_backend(std::string_view name);
std::string_view backend_name(Backend backend);

}  // namespace chunktree::tools
