// Parsing command-line option values, with errors that name the option.
#pragma once

#include <cstdint>
#include <string_view>

namespace chunktree::tools {

// The integer value of `flag`, which must lie in [min, max]; throws invalid_argument otherwise.
std::int64_t integer_option(std::string_view flag, std::string_view value, std::int64_t min, std::int64_t max);

}  // namespace chunktree::tools
