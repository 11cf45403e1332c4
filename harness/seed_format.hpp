// The seed project's "chunk-first" test files (docs/FORMATS.md, "Seed format"): reading,
// writing and generating them, and computing their outputs through the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "harness/check.hpp"

namespace chunktree::harness {

// Every seed file uses these; the header repeats them so that other shapes are caught.
inline constexpr int kSeedChunkSize = 64;
inline constexpr int kSeedHeadDim = 128;

struct SeedShape {
  int seqs = 1;    // S: query rows; every row reads every chunk
  int heads = 1;   // H
  int chunks = 1;  // C
};

// The per-chunk outputs, one vector per chunk (one line of the file each). Layouts are those of
// chunk-first files; sequence-first files hold the same arrays sequence-major ([S, H] rows).
struct SeedOutputs {
  std::vector<std::vector<float>> attns;  // C × [H, S, 128]: Σ exp(score − max) · v, not normalised
  std::vector<std::vector<float>> maxs;   // C × [H, S]: the largest scaled score
  std::vector<std::vector<float>> sums;   // C × [H, S]: Σ exp(score − max)
};

// A whole file in memory.
struct SeedFile {
  SeedShape shape;
  std::vector<float> q;               // [S, H, 128]
  std::vector<std::vector<float>> k;  // C × [H, 64, 128]
  std::vector<std::vector<float>> v;  // C × [H, 64, 128]
  SeedOutputs outputs;                // the expected values, or computed ones in a dump
};

// One file of a generated grid: a value pattern and a shape.
struct SeedCase {
  std::string pattern;  // randn, small, uniform, large or positive
  SeedShape shape;
};

// Throws chunktree::Error (code format) naming the file and line when the file is malformed.
SeedFile read_seed_file(const std::string& path);
void write_seed_file(const std::string& path, const SeedFile& file);

// Every value a file of this shape holds, as a measure of how long it takes to write or check.
double seed_file_values(const SeedShape& shape);
// "{pattern}_s{S}_h{H}_c{C}.txt"
std::string seed_file_name(const SeedCase& seed_case);
// The quick grid (36 files) or the full one (1680 files), in a fixed order.
std::vector<SeedCase> seed_grid(bool full);
// Random inputs of the case's pattern, rounded to bf16 and seeded by the file name, with
// expected outputs computed in fp64 and rounded to fp32.
SeedFile generate_seed_file(const SeedCase& seed_case);

// The outputs in fp64 straight from the definition (the generator's expected values).
SeedOutputs reference_outputs(const SeedFile& file);
// The outputs through the library: prefix cache, plan and backend (the CPU one on `threads`
// threads, 0: one per hardware thread).
SeedOutputs library_outputs(const SeedFile& file, Backend backend = Backend::cpu, int threads = 0);
// check_seed_file (harness/check.hpp) with the cache dtype given rather than the backend's:
// inputs not exact in it are rounded first and the kernel judged against fp64 on the rounded
// inputs (docs/FORMATS.md, "Inputs the GPU cache rounds"), so that a CPU test can run the bf16
// logic. Reads either seed format (chunk-first or sequence-first), told apart by the header.
CheckResult check_seed_file(const std::string& path, const CheckOptions& options, DType cache_dtype);
// Compares computed outputs with expected ones under the default or the --strict rule.
CheckResult compare_seed_outputs(const SeedOutputs& actual, const SeedOutputs& expected, bool strict, bool verbose);
// The same comparisons added to `result` (the lines of `expected` only: `actual` may hold more).
void compare_seed_outputs_into(const SeedOutputs& actual, const SeedOutputs& expected, const CheckOptions& options,
                               CheckResult& result);

}  // namespace chunktree::harness
