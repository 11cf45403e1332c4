// Parsing command-line options, with errors that name the command and the option.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "harness/backend.hpp"
#include "harness/text_arrays.hpp"

namespace chunktree::tools {

// The integer value of `flag`, which must lie in [min, max]; throws invalid_argument otherwise.
std::int64_t integer_option(std::string_view flag, std::string_view value, std::int64_t min, std::int64_t max);

// The word after option args[i] (advancing i), or an invalid_argument error "<command>: <option> needs a value".
std::string_view option_value(std::string_view command, Args args, std::size_t& i);

// "cpu", "cuda" (needs a visible Hopper GPU) or "auto" (the GPU when there is one, else the
// CPU). Throws an Error that says what to use instead when the choice is unknown or unavailable.
harness::Backend select_backend(std::string_view name);

// An output file opened before a command's work (so that a path that cannot be written is refused at
// once, not after a run), or none for an empty path; finish_output writes `text` into it and puts it
// in place (harness::OutputFile: nothing half-written under the name if the write fails).
std::unique_ptr<harness::OutputFile> open_output(const std::string& path);
void finish_output(const std::unique_ptr<harness::OutputFile>& file, std::string_view text);

}  // namespace chunktree::tools
