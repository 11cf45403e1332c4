#include "options.hpp"

#include <charconv>
#include <string>

#include "chunktree/device.hpp"
#include "chunktree/types.hpp"

namespace chunktree::tools {

std::int64_t integer_option(std::string_view flag, std::string_view value, std::int64_t min, std::int64_t max) {
  std::int64_t result = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (error != std::errc() || end != value.data() + value.size() || result < min || result > max) {
    throw Error(ErrorCode::invalid_argument, std::string(flag) + " needs an integer from " + std::to_string(min) + " to " +
                                                 std::to_string(max) + ", got '" + std::string(value) + "'");
  }
  return result;
}

std::string_view option_value(std::string_view command, Args args, std::size_t& i) {
  if (i + 1 >= args.size()) {
    throw Error(ErrorCode::invalid_argument, std::string(command) + ": " + std::string(args[i]) + " needs a value");
  }
  return args[++i];
}

harness::Backend select_backend(std::string_view name) {
  if (name == "cpu") return harness::Backend::cpu;
  if (name == "auto") return hopper_visible() ? harness::Backend::cuda : harness::Backend::cpu;
  if (name == "cuda") {
    if (!hopper_visible()) throw Error(ErrorCode::unsupported, "--backend cuda: no Hopper GPU (sm_90) is visible; use --backend cpu");
    return harness::Backend::cuda;
  }
  throw Error(ErrorCode::invalid_argument, "--backend must be cpu, cuda or auto, got '" + std::string(name) + "'");
}

}  // namespace chunktree::tools
