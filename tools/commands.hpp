// The chunktree CLI's subcommands. Each takes the words after its name and returns the exit code.
#pragma once

#include <span>
#include <string_view>

namespace chunktree::tools {

using Args = std::span<const std::string_view>;

int gentests_command(Args args);  // seed-format grids (gentests_command.cpp)
int gentrees_command(Args args);  // random tree workloads (gentrees_command.cpp)
int check_command(Args args);     // checks seed and tree files against a backend (check_command.cpp)
int bench_command(Args args);     // the default benchmark (bench_command.cpp)
int host_bench_command(Args args);  // a decode step's host work (bench/host_bench.cpp)
int info_command(Args args);      // build and device information (main.cpp)

}  // namespace chunktree::tools
