#include "harness/seed_format.hpp"

#include <cstdio>
#include <stdexcept>

#include "harness/random.hpp"
#include "harness/seed_common.hpp"
#include "harness/seq_first_format.hpp"
#include "harness/text_arrays.hpp"

namespace chunktree::harness {
namespace {

// The three per-chunk arrays with their --strict tolerances (on each chunk's relative norm).
struct ArrayRule {
  std::string_view name;
  double strict_tolerance;
  ChunkLines SeedOutputs::*lines;
};

const ArrayRule kArrayRules[] = {
    {"attns", 1e-2, &SeedOutputs::attns},
    {"maxs", 1e-4, &SeedOutputs::maxs},
    {"sums", 1e-3, &SeedOutputs::sums},
};

SeedInputs inputs_of(const SeedFile& file) {
  return SeedInputs{file.shape, file.shape.chunks * kSeedChunkSize, file.q, file.k, file.v};
}

// Reads Q and the per-chunk lines that follow the header (read_seed_file and check_seed_file).
SeedFile read_chunk_first_body(LineReader& reader, const SeedHeader& header) {
  if (header.seq_first) {
    reader.fail("this is a sequence-first file (7 header integers); read it with read_seq_first_file");
  }
  SeedFile file;
  file.shape = header.shape;
  const int chunks = file.shape.chunks;
  const std::size_t kv_values = seed_kv_chunk_values(file.shape);
  file.q = reader.floats(reader.next("Q"), seed_q_values(file.shape), "Q");
  file.k = read_chunk_lines(reader, chunks, "K", kv_values);
  file.v = read_chunk_lines(reader, chunks, "V", kv_values);
  file.outputs.attns = read_chunk_lines(reader, chunks, "attns", seed_q_values(file.shape));
  file.outputs.maxs = read_chunk_lines(reader, chunks, "maxs", seed_row_values(file.shape));
  file.outputs.sums = read_chunk_lines(reader, chunks, "sums", seed_row_values(file.shape));
  expect_end(reader, "1 + 5 x n_chunks array lines");
  return file;
}

const SeedCheckSteps<SeedFile> kChunkFirstSteps{
    .compute = &library_outputs,
    .set_reference = [](SeedFile& file) { file.outputs = reference_outputs(file); },
    .compare = [](const SeedOutputs& computed, const SeedFile& expected, const CheckOptions& options) {
      return compare_seed_outputs(computed, expected.outputs, options.strict, options.verbose);
    },
    .dump = [](const std::string& path, SeedFile file, SeedOutputs computed) {
      file.outputs = std::move(computed);
      write_seed_file(path, file);
    },
};

}  // namespace

// ---------------------------------------------------------------------------------------------

SeedFile read_seed_file(const std::string& path) {
  LineReader reader(path);
  const SeedHeader header = read_seed_header(reader);
  return read_chunk_first_body(reader, header);
}

void write_seed_file(const std::string& path, const SeedFile& file) {
  OutputFile output(path);
  std::FILE* stream = output.get();
  std::fprintf(stream, "%d %d %d %d %d\n", file.shape.seqs, kSeedChunkSize, kSeedHeadDim, file.shape.heads, file.shape.chunks);
  write_floats(stream, file.q);
  for (const auto* lines : {&file.k, &file.v, &file.outputs.attns, &file.outputs.maxs, &file.outputs.sums}) {
    for (const std::vector<float>& line : *lines) write_floats(stream, line);
  }
  output.close();
}

double seed_file_values(const SeedShape& s) {
  const double per_chunk = 2.0 * static_cast<double>(seed_kv_chunk_values(s)) + static_cast<double>(seed_q_values(s)) +
                           2.0 * static_cast<double>(seed_row_values(s));
  return static_cast<double>(seed_q_values(s)) + s.chunks * per_chunk;
}

std::string seed_file_name(const SeedCase& seed_case) {
  return seed_case.pattern + "_s" + std::to_string(seed_case.shape.seqs) + "_h" + std::to_string(seed_case.shape.heads) +
         "_c" + std::to_string(seed_case.shape.chunks) + ".txt";
}

std::vector<SeedCase> seed_grid(bool full) {
  struct Axes {
    std::vector<std::string_view> patterns;
    std::vector<int> seqs, heads, chunks;
  };
  static const Axes quick{{"randn", "small"}, {8, 16, 32}, {1, 4}, {1, 2, 4}};
  static const Axes all{seed_patterns(), {1, 2, 4, 8, 16, 24, 32}, {1, 2, 4, 8, 12, 16}, {1, 2, 3, 4, 6, 8, 12, 16}};
  const Axes& axes = full ? all : quick;
  std::vector<SeedCase> cases;
  for (std::string_view pattern : axes.patterns) {
    for (int s : axes.seqs) {
      for (int h : axes.heads) {
        for (int c : axes.chunks) cases.push_back(SeedCase{std::string(pattern), SeedShape{s, h, c}});
      }
    }
  }
  return cases;
}

SeedFile generate_seed_file(const SeedCase& seed_case) {
  const SeedShape& shape = seed_case.shape;
  if (shape.seqs < 1 || shape.heads < 1 || shape.chunks < 1) {
    throw Error(ErrorCode::invalid_argument, "generate_seed_file: S, H and C must each be at least 1");
  }
  Random random(seed_from(seed_file_name(seed_case)));
  SeedFile file;
  file.shape = shape;
  file.q = draw_seed_bf16(random, seed_case.pattern, seed_q_values(shape));
  for (int c = 0; c < shape.chunks; ++c) file.k.push_back(draw_seed_bf16(random, seed_case.pattern, seed_kv_chunk_values(shape)));
  for (int c = 0; c < shape.chunks; ++c) file.v.push_back(draw_seed_bf16(random, seed_case.pattern, seed_kv_chunk_values(shape)));
  file.outputs = reference_outputs(file);
  return file;
}

SeedOutputs reference_outputs(const SeedFile& file) {
  const auto chunks = static_cast<std::size_t>(file.shape.chunks);
  const std::size_t rows = seed_row_values(file.shape);
  SeedOutputs outputs;
  outputs.attns.assign(chunks, std::vector<float>(rows * kSeedHeadDim));
  outputs.maxs.assign(chunks, std::vector<float>(rows));
  outputs.sums.assign(chunks, std::vector<float>(rows));
  const auto seqs = static_cast<std::size_t>(file.shape.seqs);
  for_each_fp64_state(inputs_of(file), [&](std::size_t c, std::size_t s, std::size_t h, double max, double sum, const double* weighted) {
    const std::size_t row = h * seqs + s;
    for (std::size_t d = 0; d < kSeedHeadDim; ++d) outputs.attns[c][row * kSeedHeadDim + d] = static_cast<float>(weighted[d]);
    outputs.maxs[c][row] = static_cast<float>(max);
    outputs.sums[c][row] = static_cast<float>(sum);
  });
  return outputs;
}

SeedOutputs library_outputs(const SeedFile& file, Backend backend, int threads) {
  return library_chunk_states(inputs_of(file), RowOrder::heads_major, backend, threads);
}

CheckResult compare_seed_outputs(const SeedOutputs& actual, const SeedOutputs& expected, bool strict, bool verbose) {
  CheckResult result;
  CheckOptions options;
  options.strict = strict;
  options.verbose = verbose;
  compare_seed_outputs_into(actual, expected, options, result);
  result.passed = result.fails == 0;
  return result;
}

void compare_seed_outputs_into(const SeedOutputs& actual, const SeedOutputs& expected, const CheckOptions& options,
                               CheckResult& result) {
  for (const ArrayRule& rule : kArrayRules) {
    compare_chunk_lines(rule.name, rule.strict_tolerance, actual.*rule.lines, expected.*rule.lines, options, result);
  }
}

CheckResult check_seed_file(const std::string& path, const CheckOptions& options) {
  return check_seed_file(path, options, seed_cache_dtype(options.backend));
}

CheckResult check_seed_file(const std::string& path, const CheckOptions& options, DType cache_dtype) {
  LineReader reader(path);
  const SeedHeader header = read_seed_header(reader);
  if (header.seq_first) return check_seq_first(reader, header, options, cache_dtype);
  return run_seed_check(read_chunk_first_body(reader, header), options, cache_dtype, kChunkFirstSteps);
}

}  // namespace chunktree::harness
