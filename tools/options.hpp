// Parsing command-line options, with errors that name the command and the option.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "commands.hpp"
#include "harness/backend.hpp"

namespace chunktree::tools {

// The integer value of `flag`, which must lie in [min, max]; throws invalid_argument otherwise.
std::int64_t integer_option(std::string_view flag, std::string_view value, std::int64_t min, std::int64_t max);

// The word after option args[i] (advancing i), or an invalid_argument error "<command>: <option> needs a value".
std::string_view option_value(std::string_view command, Args args, std::size_t& i);

// "cpu", "cuda" (needs a visible Hopper GPU) or "auto" (the GPU when there is one, else the
// CPU). Throws an Error that says what to use instead when the choice is unknown or unavailable.
harness::Backend select_backend(std::string_view name);

}  // namespace chunktree::tools
