// What the two seed formats share (docs/FORMATS.md): chunk-first (seed_format.cpp) and
// sequence-first (seq_first_format.cpp). Their header, the per-chunk lines, the value patterns,
// the fp64 and library per-chunk states, the comparison rules, and judging a check when the
// backend's cache rounds the file's inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunktree/types.hpp"
#include "harness/check.hpp"
#include "harness/random.hpp"
#include "harness/seed_format.hpp"
#include "harness/text_arrays.hpp"

namespace chunktree::harness {

using ChunkLines = std::vector<std::vector<float>>;  // one line of the file per chunk

// The first line of either seed format: 5 integers (chunk-first) or 7 (sequence-first).
struct SeedHeader {
  SeedShape shape;
  bool seq_first = false;
  int seq_tokens = 0;     // sequence-first only: the tokens every query reads
  int shared_chunks = 0;  // sequence-first only: the first chunks whose states the file holds
};
// Reads and validates the header line; a format error says what to fix.
SeedHeader read_seed_header(LineReader& reader);

// `count` lines of `values` each, named like "K chunk 2" in error messages.
ChunkLines read_chunk_lines(LineReader& reader, int count, std::string_view array, std::size_t values);
// Blank lines may follow the last array, nothing else. `promise` says how many lines the header
// promises, for the message.
void expect_end(LineReader& reader, std::string_view promise);

std::size_t seed_q_values(const SeedShape& shape);         // S·H·128
std::size_t seed_kv_chunk_values(const SeedShape& shape);  // H·64·128
std::size_t seed_row_values(const SeedShape& shape);       // S·H

// The value patterns of the generated grids: randn, small, uniform, large, positive.
std::vector<std::string_view> seed_patterns();
// `count` values of the pattern, rounded to bf16 (never all zeros for count > 16).
std::vector<float> draw_seed_bf16(Random& random, std::string_view pattern, std::size_t count);

// A file's inputs: Q [S, H, 128]; K and V per chunk [H, 64, 128], of which the first `tokens`
// tokens are read (the last chunk may be cut).
struct SeedInputs {
  const SeedShape& shape;
  int tokens;
  const std::vector<float>& q;
  const ChunkLines& k;
  const ChunkLines& v;
};
int chunk_tokens(const SeedInputs& inputs, std::size_t chunk);  // 64, or fewer for a cut last chunk

// One (chunk, row, head) state of the definition in fp64, scale 1/√128: the largest scaled score,
// Σ exp(score − max) and the unnormalised Σ exp(score − max)·v (128 values).
using Fp64StateVisitor = std::function<void(std::size_t chunk, std::size_t seq, std::size_t head, double max, double sum,
                                            const double* weighted)>;
void for_each_fp64_state(const SeedInputs& inputs, const Fp64StateVisitor& visit);

// Where state (seq, head) sits in a line: chunk-first files are head-major ([H, S]),
// sequence-first files sequence-major ([S, H]).
enum class RowOrder { heads_major, seqs_major };
// One chunk's state of every row as (maxs, sums, attns) lines in `order`, computed through the
// library: prefix cache, plan and backend (one work item per chunk and row).
SeedOutputs library_chunk_states(const SeedInputs& inputs, RowOrder order, Backend backend, int threads);

// Compares lines (one comparison per element, or one per line under --strict on the relative
// norm with `strict_tolerance`), adding to `result`; with `verbose` one detail line each.
void compare_chunk_lines(std::string_view name, double strict_tolerance, const ChunkLines& actual,
                         const ChunkLines& expected, const CheckOptions& options, CheckResult& result);

// Inputs not exactly representable in the backend cache's dtype are rounded by the cache.
struct InputRounding {
  std::int64_t rounded = 0;  // values changed
  std::int64_t total = 0;    // values looked at
  double max_change = 0.0;   // largest |rounded − original|
};
// Rounds Q, K and V in place to `dtype` and says how many changed and by how much.
InputRounding round_inputs(DType dtype, std::vector<float>& q, ChunkLines& k, ChunkLines& v);
// The cache dtype a backend runs seed files in: f32 on the CPU, bf16 on CUDA.
DType seed_cache_dtype(Backend backend);

// The check's result when inputs were rounded: `compare(true)` judges the kernel against the fp64
// values of the rounded inputs, and `compare(false)` against the file's own expected values is
// printed beside it. Without rounding, just compare(false).
CheckResult judge_rounded_check(const InputRounding& rounding, DType dtype,
                                const std::function<CheckResult(bool against_rounded_inputs)>& compare);

// A seed check, the same for both formats: the inputs rounded to the cache's dtype, every chunk's
// state computed through the library, judged (against the rounded inputs' fp64 values when any was
// rounded) and, with options.dump_path, the file written back with the computed values.
template <typename File>
struct SeedCheckSteps {
  SeedOutputs (*compute)(const File& file, Backend backend, int threads);
  void (*set_reference)(File& file);  // expected values in fp64 from the file's inputs
  CheckResult (*compare)(const SeedOutputs& computed, const File& expected, const CheckOptions& options);
  void (*dump)(const std::string& path, File file, SeedOutputs computed);
};

template <typename File>
CheckResult run_seed_check(File file, const CheckOptions& options, DType cache_dtype, const SeedCheckSteps<File>& steps) {
  // The inputs are rounded in place: the file's own expected values stay, and only when something
  // was rounded is a copy made to hold the fp64 values of the rounded inputs.
  const InputRounding rounding = round_inputs(cache_dtype, file.q, file.k, file.v);
  SeedOutputs computed = steps.compute(file, options.backend, options.threads);
  std::optional<File> rounded_reference;
  if (rounding.rounded > 0) steps.set_reference(rounded_reference.emplace(file));
  CheckResult result = judge_rounded_check(rounding, cache_dtype, [&](bool against_rounded) {
    return steps.compare(computed, against_rounded ? *rounded_reference : file, options);
  });
  // The dump holds the inputs the values were computed from: checking it again gives the same bits.
  if (!options.dump_path.empty()) steps.dump(options.dump_path, std::move(file), std::move(computed));
  return result;
}

}  // namespace chunktree::harness
