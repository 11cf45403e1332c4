// chunktree: tests, checks and benchmarks for the chunktree library.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "chunktree/device.hpp"
#include "chunktree/types.hpp"
#include "chunktree/version.hpp"
#include "commands.hpp"

namespace chunktree::tools {

namespace {

void print_version() { std::printf("chunktree %s\n", CHUNKTREE_VERSION_STRING); }

void print_usage(std::FILE* stream) {
  std::fprintf(stream,
               "usage: chunktree <command> [options]\n"
               "commands:\n"
               "  bench                     the default benchmark (CPU backend where there is no GPU)\n"
               "  host-bench                a decode step's host work: append, plan, upload\n"
               "  gentests [--quick|--full] DIR\n"
               "                            write seed-format test files\n"
               "  gentrees [options] DIR    write random tree test files (see docs/FORMATS.md)\n"
               "  check FILE... [--backend cpu|cuda|auto] [--strict] [-v] [--jobs N] [--dump DIR]\n"
               "                            check seed or tree files against a backend\n"
               "  info                      version and visible CUDA devices\n"
               "  --version, -V             the version\n"
               "Run 'chunktree <command> --help' for a command's options.\n");
}

}  // namespace

int info_command(Args args) {
  if (!args.empty()) throw Error(ErrorCode::invalid_argument, "info takes no arguments");
  print_version();
  const std::vector<CudaDevice> devices = cuda_devices();
  if (devices.empty()) std::printf("CUDA devices: none visible (the CPU backend runs everything)\n");
  for (const CudaDevice& device : devices) {
    std::printf("CUDA device %d: %s, compute capability %d.%d, %d SMs, %.1f GiB, L2 %.1f MiB\n", device.index,
                device.name.c_str(), device.major, device.minor, device.multiprocessors,
                static_cast<double>(device.memory_bytes) / (1 << 30), static_cast<double>(device.l2_bytes) / (1 << 20));
  }
  return 0;
}

}  // namespace chunktree::tools

int main(int argc, char** argv) {
  using namespace chunktree::tools;
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string_view command = argv[1];
  const std::vector<std::string_view> args(argv + 2, argv + argc);
  // The command's exit code; -1 for a command that does not exist.
  const auto run = [&]() -> int {
    if (command == "bench") return bench_command(args);
    if (command == "host-bench") return host_bench_command(args);
    if (command == "gentests") return gentests_command(args);
    if (command == "gentrees") return gentrees_command(args);
    if (command == "check") return check_command(args);
    if (command == "info") return info_command(args);
    if (command == "--version" || command == "-V") {
      if (!args.empty()) throw chunktree::Error(chunktree::ErrorCode::invalid_argument, "--version takes no arguments");
      print_version();
      return 0;
    }
    if (command == "help" || command == "--help" || command == "-h") {
      print_usage(stdout);
      return 0;
    }
    return -1;
  };
  try {
    const int code = run();
    if (code < 0) {
      std::fprintf(stderr, "chunktree: unknown command '%s'\n", argv[1]);
      print_usage(stderr);
      return 2;
    }
    // A command's results are on standard output: one that could not be written (a full disk) is
    // the command's failure, not a silent success.
    if (std::fflush(stdout) == 0 && std::ferror(stdout) == 0) return code;
    std::fprintf(stderr, "chunktree %s: error: writing the results to standard output failed\n", argv[1]);
    return 2;
  } catch (const chunktree::Error& error) {
    std::fprintf(stderr, "chunktree %s: error: %s\n", argv[1], error.what());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "chunktree %s: internal error: %s\n", argv[1], error.what());
    return 3;
  }
}
