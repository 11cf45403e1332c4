#include "harness/seq_first_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chunktree/merge.hpp"
#include "harness/random.hpp"
#include "harness/text_arrays.hpp"

namespace chunktree::harness {
namespace {

constexpr std::size_t kDim = kSeedHeadDim;

// The strict tolerance on the output's relative norm (the shared states use the seed's rules).
constexpr double kOutputStrictTolerance = 1e-2;

SeedInputs inputs_of(const SeqFirstFile& file) { return SeedInputs{file.shape, file.seq_tokens, file.q, file.k, file.v}; }

std::size_t state_values(const SeqFirstFile& file) { return seed_row_values(file.shape); }

SeedOutputs empty_states(const SeqFirstFile& file, int chunks) {
  const auto count = static_cast<std::size_t>(chunks);
  SeedOutputs states;
  states.maxs.assign(count, std::vector<float>(state_values(file)));
  states.sums.assign(count, std::vector<float>(state_values(file)));
  states.attns.assign(count, std::vector<float>(state_values(file) * kDim));
  return states;
}

SeqFirstFile read_body(LineReader& reader, const SeedHeader& header) {
  SeqFirstFile file;
  file.shape = header.shape;
  file.seq_tokens = header.seq_tokens;
  file.shared_chunks = header.shared_chunks;
  const std::size_t kv_values = seed_kv_chunk_values(file.shape);
  file.q = reader.floats(reader.next("Q"), seed_q_values(file.shape), "Q");
  file.k = read_chunk_lines(reader, file.shape.chunks, "K", kv_values);
  file.v = read_chunk_lines(reader, file.shape.chunks, "V", kv_values);
  file.output = reader.floats(reader.next("the output"), seed_q_values(file.shape), "the output");
  // A state's maximum is a score and its sum of exponentials holds the maximum's own term: a
  // maximum that is not finite or a sum that is not positive and finite is no state, and merging it
  // would only turn the output into NaN. Refused on the line that holds it.
  const auto check_values = [&](const std::vector<float>& values, const std::string& array, bool (*valid)(float), const char* what) {
    const auto bad = std::find_if_not(values.begin(), values.end(), valid);
    if (bad == values.end()) return;
    char text[64];
    std::snprintf(text, sizeof text, "%g", static_cast<double>(*bad));
    reader.fail(array + ": value " + std::to_string(bad - values.begin() + 1) + " is " + text + "; " + what);  // counted from 1, as the reader's
  };
  for (int c = 0; c < file.shared_chunks; ++c) {  // grows with the lines read, like read_chunk_lines
    const std::string chunk = " of shared chunk " + std::to_string(c);
    file.shared.maxs.push_back(reader.floats(reader.next("maxs" + chunk), state_values(file), "maxs" + chunk));
    check_values(file.shared.maxs.back(), "maxs" + chunk, [](float x) { return std::isfinite(x); }, "a state's maximum is a finite score");
    file.shared.sums.push_back(reader.floats(reader.next("sums" + chunk), state_values(file), "sums" + chunk));
    check_values(file.shared.sums.back(), "sums" + chunk, [](float x) { return x > 0.0f && std::isfinite(x); },
                 "a state's sum of exponentials is positive and finite");
    file.shared.attns.push_back(reader.floats(reader.next("attns" + chunk), seed_q_values(file.shape), "attns" + chunk));
  }
  expect_end(reader, "1 + 2 x n_chunks + 1 + 3 x n_shared_chunks array lines");
  return file;
}

// A (maxs, sums, attns) state as the merge primitives take it: o = attns / sums,
// lse = maxs + ln(sums).
void to_merge_state(const SeedOutputs& states, std::size_t chunk, std::size_t row, float* o, float& lse) {
  const double max = states.maxs[chunk][row];
  const double sum = states.sums[chunk][row];
  lse = static_cast<float>(max + std::log(sum));
  for (std::size_t d = 0; d < kDim; ++d) o[d] = static_cast<float>(states.attns[chunk][row * kDim + d] / sum);
}

}  // namespace

SeqFirstFile read_seq_first_file(const std::string& path) {
  LineReader reader(path);
  const SeedHeader header = read_seed_header(reader);
  if (!header.seq_first) reader.fail("this is a chunk-first file (5 header integers), not a sequence-first one; read it with read_seed_file");
  return read_body(reader, header);
}

namespace {

// What is wrong with a header's numbers for the generator and the writer (empty when nothing is);
// the reader says it line by line in read_seed_header.
std::string header_problem(const SeedShape& shape, int seq_tokens, int shared_chunks) {
  if (shape.seqs < 1 || shape.heads < 1 || shape.chunks < 1) return "n_seqs, n_heads and n_chunks must be at least 1";
  if (seq_tokens <= kSeedChunkSize * (shape.chunks - 1) || seq_tokens > kSeedChunkSize * shape.chunks) {
    return "seq_tokens " + std::to_string(seq_tokens) + " leaves a chunk empty or exceeds the chunks (64·(C − 1) < seq_tokens ≤ 64·C)";
  }
  if (shared_chunks < 0 || shared_chunks > shape.chunks) return "shared_chunks must be from 0 to n_chunks";
  return {};
}

// A file built by hand must hold what its header will say, or the reader would refuse what was
// written: checked before anything is.
void check_writable(const SeqFirstFile& file) {
  const SeedShape& shape = file.shape;
  const auto refuse = [](const std::string& what) {
    throw Error(ErrorCode::invalid_argument, "write_seq_first_file: " + what + "; make the arrays match the shape, seq_tokens and shared_chunks");
  };
  if (const std::string problem = header_problem(shape, file.seq_tokens, file.shared_chunks); !problem.empty()) refuse(problem);
  const auto lines_of = [](const std::vector<std::vector<float>>& lines, std::size_t count, std::size_t values) {
    return lines.size() == count && std::all_of(lines.begin(), lines.end(), [&](const std::vector<float>& line) { return line.size() == values; });
  };
  const auto chunks = static_cast<std::size_t>(shape.chunks);
  const auto shared = static_cast<std::size_t>(file.shared_chunks);
  if (file.q.size() != seed_q_values(shape) || file.output.size() != seed_q_values(shape)) refuse("Q and the output hold S·H·128 values");
  if (!lines_of(file.k, chunks, seed_kv_chunk_values(shape)) || !lines_of(file.v, chunks, seed_kv_chunk_values(shape))) {
    refuse("K and V hold n_chunks lines of H·64·128 values");
  }
  if (!lines_of(file.shared.maxs, shared, state_values(file)) || !lines_of(file.shared.sums, shared, state_values(file)) ||
      !lines_of(file.shared.attns, shared, seed_q_values(shape))) {
    refuse("the shared states hold shared_chunks lines each of maxs and sums (S·H values) and attns (S·H·128)");
  }
}

}  // namespace

void write_seq_first_file(const std::string& path, const SeqFirstFile& file) {
  check_writable(file);
  OutputFile output(path);
  std::FILE* stream = output.get();
  std::fprintf(stream, "%d %d %d %d %d %d %d\n", file.shape.seqs, kSeedChunkSize, kSeedHeadDim, file.shape.heads,
               file.shape.chunks, file.seq_tokens, file.shared_chunks);
  write_floats(stream, file.q);
  for (const auto* lines : {&file.k, &file.v}) {
    for (const std::vector<float>& line : *lines) write_floats(stream, line);
  }
  write_floats(stream, file.output);
  for (std::size_t c = 0; c < static_cast<std::size_t>(file.shared_chunks); ++c) {
    write_floats(stream, file.shared.maxs[c]);
    write_floats(stream, file.shared.sums[c]);
    write_floats(stream, file.shared.attns[c]);
  }
  output.close();
}

std::string seq_first_file_name(const SeqFirstCase& seq_case) {
  const SeedShape& s = seq_case.shape;
  return "seqfirst_" + seq_case.pattern + "_s" + std::to_string(s.seqs) + "_h" + std::to_string(s.heads) + "_c" +
         std::to_string(s.chunks) + "_n" + std::to_string(seq_case.shared_chunks) + "_t" +
         std::to_string(seq_case.seq_tokens) + ".txt";
}

double seq_first_file_values(const SeqFirstCase& seq_case) {
  const SeedShape& s = seq_case.shape;
  const double rows = static_cast<double>(seed_row_values(s));
  return 2.0 * s.chunks * static_cast<double>(seed_kv_chunk_values(s)) + 2.0 * rows * kDim +
         seq_case.shared_chunks * rows * (kDim + 2.0);
}

std::vector<SeqFirstCase> seq_first_grid(bool full) {
  struct Axes {
    std::vector<std::string_view> patterns;
    std::vector<int> seqs, heads, chunks;
    std::vector<int> last_chunk_tokens;  // of 64: the fractions 1 and 0.5 (quick) or 1, 0.75, 0.5, 0.25 (full)
  };
  static const Axes quick{{"small", "randn"}, {1, 4}, {1, 4}, {2, 4}, {64, 32}};
  static const Axes all{seed_patterns(), {1, 2, 4, 8, 16}, {1, 2, 4, 8}, {1, 2, 4, 8}, {64, 48, 32, 16}};
  const Axes& axes = full ? all : quick;
  std::vector<SeqFirstCase> cases;
  for (std::string_view pattern : axes.patterns) {
    for (int s : axes.seqs) {
      for (int h : axes.heads) {
        for (int c : axes.chunks) {
          // Shared {0, C/2}: one value when C = 1.
          for (int shared : c / 2 > 0 ? std::vector<int>{0, c / 2} : std::vector<int>{0}) {
            for (int last : axes.last_chunk_tokens) {
              cases.push_back(SeqFirstCase{std::string(pattern), SeedShape{s, h, c}, shared, kSeedChunkSize * (c - 1) + last});
            }
          }
        }
      }
    }
  }
  return cases;
}

SeqFirstFile generate_seq_first_file(const SeqFirstCase& seq_case) {
  const SeedShape& shape = seq_case.shape;
  if (const std::string problem = header_problem(shape, seq_case.seq_tokens, seq_case.shared_chunks); !problem.empty()) {
    throw Error(ErrorCode::invalid_argument, "generate_seq_first_file: " + problem);
  }
  Random random(seed_from(seq_first_file_name(seq_case)));
  SeqFirstFile file;
  file.shape = shape;
  file.seq_tokens = seq_case.seq_tokens;
  file.shared_chunks = seq_case.shared_chunks;
  file.q = draw_seed_bf16(random, seq_case.pattern, seed_q_values(shape));
  for (ChunkLines* lines : {&file.k, &file.v}) {
    for (int c = 0; c < shape.chunks; ++c) lines->push_back(draw_seed_bf16(random, seq_case.pattern, seed_kv_chunk_values(shape)));
  }
  set_reference_values(file);
  return file;
}

void set_reference_values(SeqFirstFile& file) {
  // Each row's states over the chunks, merged in fp64 as they come (chunk by chunk).
  const std::size_t rows = state_values(file);
  std::vector<double> max(rows, -INFINITY), sum(rows, 0.0), weighted(rows * kDim, 0.0);
  file.shared = empty_states(file, file.shared_chunks);
  const auto heads = static_cast<std::size_t>(file.shape.heads);
  for_each_fp64_state(inputs_of(file), [&](std::size_t c, std::size_t s, std::size_t h, double chunk_max, double chunk_sum,
                                           const double* chunk_weighted) {
    const std::size_t row = s * heads + h;
    if (c < static_cast<std::size_t>(file.shared_chunks)) {
      file.shared.maxs[c][row] = static_cast<float>(chunk_max);
      file.shared.sums[c][row] = static_cast<float>(chunk_sum);
      for (std::size_t d = 0; d < kDim; ++d) file.shared.attns[c][row * kDim + d] = static_cast<float>(chunk_weighted[d]);
    }
    const double new_max = std::max(max[row], chunk_max);
    const double keep = std::exp(max[row] - new_max);  // 0 for the first chunk (max −inf)
    const double add = std::exp(chunk_max - new_max);
    sum[row] = sum[row] * keep + chunk_sum * add;
    for (std::size_t d = 0; d < kDim; ++d) weighted[row * kDim + d] = weighted[row * kDim + d] * keep + chunk_weighted[d] * add;
    max[row] = new_max;
  });
  file.output.assign(rows * kDim, 0.0f);
  for (std::size_t i = 0; i < file.output.size(); ++i) file.output[i] = static_cast<float>(weighted[i] / sum[i / kDim]);
}

SeedOutputs seq_first_chunk_states(const SeqFirstFile& file, Backend backend, int threads) {
  return library_chunk_states(inputs_of(file), RowOrder::seqs_major, backend, threads);
}

std::vector<float> merged_output(const SeqFirstFile& file, const SeedOutputs& shared, const SeedOutputs& computed) {
  const auto chunks = static_cast<std::size_t>(file.shape.chunks);
  const std::size_t rows = state_values(file);  // (seq, head), sequence-major
  const auto heads = static_cast<std::size_t>(file.shape.heads);
  // merge_states wants o [S, C, H, 128] and lse [S, C, H]: chunk c's state of every row.
  std::vector<float> o(rows * chunks * kDim);
  std::vector<float> lse(rows * chunks);
  for (std::size_t row = 0; row < rows; ++row) {
    const std::size_t s = row / heads;
    const std::size_t h = row % heads;
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t at = (s * chunks + c) * heads + h;
      const SeedOutputs& states = c < static_cast<std::size_t>(file.shared_chunks) ? shared : computed;
      to_merge_state(states, c, row, &o[at * kDim], lse[at]);
    }
  }
  std::vector<float> out_o(rows * kDim);
  std::vector<float> out_lse(rows);
  const std::int64_t S = file.shape.seqs, C = file.shape.chunks, H = file.shape.heads, D = kSeedHeadDim;
  merge_states(ConstTensorView(o.data(), DType::f32, Device::cpu, {S, C, H, D}),
               ConstTensorView(lse.data(), DType::f32, Device::cpu, {S, C, H}),
               TensorView{out_o.data(), DType::f32, Device::cpu, {S, H, D}},
               TensorView{out_lse.data(), DType::f32, Device::cpu, {S, H}});
  return out_o;
}

CheckResult compare_seq_first(const SeedOutputs& computed, const SeqFirstFile& expected, const CheckOptions& options) {
  CheckResult result;
  const std::vector<float> output = merged_output(expected, expected.shared, computed);
  compare_chunk_lines("output", kOutputStrictTolerance, {output}, {expected.output}, options, result);
  compare_seed_outputs_into(computed, expected.shared, options, result);
  result.passed = result.fails == 0;
  return result;
}

CheckResult check_seq_first(LineReader& reader, const SeedHeader& header, const CheckOptions& options, DType cache_dtype) {
  static const SeedCheckSteps<SeqFirstFile> steps{
      .compute = &seq_first_chunk_states,
      .set_reference = &set_reference_values,
      .compare = &compare_seq_first,
      .dump = [](const std::string& path, SeqFirstFile file, SeedOutputs computed) {
        // The output merges the shared states the dump holds, so that checking the dump gives the same bits.
        file.output = merged_output(file, computed, computed);
        const auto shared = static_cast<std::size_t>(file.shared_chunks);
        computed.maxs.resize(shared);
        computed.sums.resize(shared);
        computed.attns.resize(shared);
        file.shared = std::move(computed);
        write_seq_first_file(path, file);
      },
  };
  return run_seed_check(read_body(reader, header), options, cache_dtype, steps);
}

}  // namespace chunktree::harness
