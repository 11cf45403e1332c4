#include "harness/seed_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "chunktree/cpu_backend.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
#include "harness/random.hpp"
#include "harness/text_arrays.hpp"

namespace chunktree::harness {
namespace {

constexpr std::size_t kChunk = kSeedChunkSize;
constexpr std::size_t kDim = kSeedHeadDim;

// ---------------------------------------------------------------------------------------------
// Array sizes

std::size_t q_values(const SeedShape& s) { return static_cast<std::size_t>(s.seqs) * static_cast<std::size_t>(s.heads) * kDim; }
std::size_t kv_chunk_values(const SeedShape& s) { return static_cast<std::size_t>(s.heads) * kChunk * kDim; }
std::size_t row_stat_values(const SeedShape& s) { return static_cast<std::size_t>(s.heads) * static_cast<std::size_t>(s.seqs); }
std::size_t attns_chunk_values(const SeedShape& s) { return row_stat_values(s) * kDim; }

SeedOutputs zero_outputs(const SeedShape& shape) {
  const auto chunks = static_cast<std::size_t>(shape.chunks);
  SeedOutputs outputs;
  outputs.attns.assign(chunks, std::vector<float>(attns_chunk_values(shape)));
  outputs.maxs.assign(chunks, std::vector<float>(row_stat_values(shape)));
  outputs.sums.assign(chunks, std::vector<float>(row_stat_values(shape)));
  return outputs;
}

// ---------------------------------------------------------------------------------------------
// Reading

// Lines longer than this are refused before anything is allocated: a corrupt header could ask
// for terabytes otherwise.
constexpr double kMaxLineValues = double(1 << 28);

SeedShape read_header(LineReader& reader) {
  const std::vector<std::string_view> words = LineReader::words(reader.next("the header"));
  if (words.size() != 5) {
    reader.fail("the header must be 'n_seqs 64 128 n_heads n_chunks' (5 integers), but it has " +
                std::to_string(words.size()) + " words");
  }
  constexpr auto kMaxExtent = static_cast<std::int64_t>(kMaxLineValues);
  const std::int64_t seqs = reader.integer(words[0], "n_seqs (header word 1)", 1, kMaxExtent);
  const std::int64_t chunk_size = reader.integer(words[1], "the chunk size (header word 2)");
  const std::int64_t head_dim = reader.integer(words[2], "the head dim (header word 3)");
  const std::int64_t heads = reader.integer(words[3], "n_heads (header word 4)", 1, kMaxExtent);
  const std::int64_t chunks = reader.integer(words[4], "n_chunks (header word 5)", 1, kMaxExtent);
  if (chunk_size != kSeedChunkSize) {
    reader.fail("the header's chunk size is " + std::to_string(chunk_size) + "; seed-format files use 64");
  }
  if (head_dim != kSeedHeadDim) {
    reader.fail("the header's head dim is " + std::to_string(head_dim) + "; seed-format files use 128");
  }
  const double longest_line = std::max(static_cast<double>(seqs), double(kChunk)) * static_cast<double>(heads) * kDim;
  if (longest_line > kMaxLineValues || static_cast<double>(chunks) * kChunk > kMaxLineValues) {
    reader.fail("the header's shape is too large for this tool (lines of at most 2^28 values)");
  }
  return SeedShape{static_cast<int>(seqs), static_cast<int>(heads), static_cast<int>(chunks)};
}

// One array per chunk, each on its own line, named like "K chunk 2" in error messages.
std::vector<std::vector<float>> read_chunk_lines(LineReader& reader, const SeedShape& shape, std::string_view array,
                                                 std::size_t values) {
  std::vector<std::vector<float>> lines;  // grows with the lines read: the header's count is only a claim
  for (int c = 0; c < shape.chunks; ++c) {
    const std::string what = std::string(array) + " chunk " + std::to_string(c);
    lines.push_back(reader.floats(reader.next(what), values, what));
  }
  return lines;
}

void expect_end(LineReader& reader) {
  while (!reader.at_end()) {
    if (!LineReader::words(reader.next("the end of the file")).empty()) {
      reader.fail("unexpected line after the last array (the header promises exactly 1 + 5 x n_chunks array lines)");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Generating

using Sampler = double (*)(Random&);

struct Pattern {
  std::string_view name;
  Sampler sample;
};

constexpr Pattern kPatterns[] = {
    {"randn", [](Random& random) { return random.normal(); }},
    {"small", [](Random& random) { return 0.1 * random.normal(); }},
    {"uniform", [](Random& random) { return random.uniform(-1.0, 1.0); }},
    {"large", [](Random& random) { return 2.0 * random.normal(); }},
    {"positive", [](Random& random) { return std::abs(random.normal()); }},
};

Sampler sampler_for(std::string_view pattern) {
  for (const Pattern& known : kPatterns) {
    if (known.name == pattern) return known.sample;
  }
  throw Error(ErrorCode::invalid_argument,
              "unknown seed pattern '" + std::string(pattern) + "'; use randn, small, uniform, large or positive");
}

// `count` values of the pattern, rounded to bf16 as the seed project's inputs are.
std::vector<float> draw_bf16(Random& random, Sampler sample, std::size_t count) {
  std::vector<float> values(count);
  for (float& value : values) value = round_to(DType::bf16, static_cast<float>(sample(random)));
  return values;
}

// One (chunk, head, row) of the definition in fp64: max, sum and the unnormalised Σ p·v.
void attend_chunk_fp64(const float* q, const float* k, const float* v, double& max, double& sum, double* weighted) {
  const double scale = 1.0 / std::sqrt(double(kDim));
  double scores[kChunk];
  max = -INFINITY;
  for (std::size_t j = 0; j < kChunk; ++j) {
    double dot = 0.0;
    for (std::size_t d = 0; d < kDim; ++d) dot += static_cast<double>(q[d]) * k[j * kDim + d];
    scores[j] = dot * scale;
    max = std::max(max, scores[j]);
  }
  sum = 0.0;
  std::fill(weighted, weighted + kDim, 0.0);
  for (std::size_t j = 0; j < kChunk; ++j) {
    const double p = std::exp(scores[j] - max);
    sum += p;
    for (std::size_t d = 0; d < kDim; ++d) weighted[d] += p * v[j * kDim + d];
  }
}

// ---------------------------------------------------------------------------------------------
// Computing through the library

CacheConfig seed_cache_config(const SeedShape& shape, Backend backend) {
  CacheConfig config;
  config.num_layers = 1;
  config.num_kv_heads = shape.heads;
  config.head_dim = kSeedHeadDim;
  config.chunk_size = kSeedChunkSize;
  // f32 holds any file's values exactly; the GPU stores bf16, which holds generated files exactly.
  config.dtype = backend == Backend::cpu ? DType::f32 : DType::bf16;
  config.capacity_chunks = shape.chunks + 1;  // one spare chunk: a margin that costs little
  config.device = backend_device(backend);
  return config;
}

// K or V as the file stores it (per chunk [H, 64, 128]) in write_kv's layout [C·64, H, 128].
std::vector<float> token_major(const std::vector<std::vector<float>>& chunks, std::size_t heads) {
  std::vector<float> tokens(chunks.size() * kChunk * heads * kDim);
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t p = 0; p < kChunk; ++p) {
        const float* source = &chunks[c][(h * kChunk + p) * kDim];
        std::copy(source, source + kDim, &tokens[((c * kChunk + p) * heads + h) * kDim]);
      }
    }
  }
  return tokens;
}

// Adds one sequence of C·64 tokens holding the file's K and V.
SeqId add_file_sequence(PrefixCache& cache, const SeedFile& file) {
  std::vector<Token> tokens(static_cast<std::size_t>(file.shape.chunks) * kChunk);
  std::iota(tokens.begin(), tokens.end(), Token{0});
  const AddResult added = cache.add(tokens);
  const auto heads = static_cast<std::size_t>(file.shape.heads);
  const std::vector<float> k = token_major(file.k, heads);
  const std::vector<float> v = token_major(file.v, heads);
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(tokens.size()), file.shape.heads, kSeedHeadDim};
  cache.write_kv(0, added.slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                 ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
  return added.seq;
}

// The batch: the sequence and S − 1 forks of it, so that every row reads every chunk.
std::vector<SeqId> batch_of_rows(PrefixCache& cache, SeqId seq, int rows) {
  std::vector<SeqId> batch{seq};
  if (rows > 1) {
    const std::vector<SeqId> forks = cache.fork(seq, rows - 1);
    batch.insert(batch.end(), forks.begin(), forks.end());
  }
  return batch;
}

// For each cache chunk id, the file chunk it holds (-1: none): token t is in file chunk t / 64.
std::vector<int> file_chunk_of_cache_chunks(const PrefixCache& cache, SeqId seq) {
  std::vector<int> file_chunk(static_cast<std::size_t>(cache.config().capacity_chunks), -1);
  const std::vector<Slot> slots = cache.slots(seq);
  for (std::size_t t = 0; t < slots.size(); ++t) file_chunk[static_cast<std::size_t>(slots[t].chunk)] = static_cast<int>(t / kChunk);
  return file_chunk;
}

// The file chunk a work item reads. The plan options make every item one whole chunk; anything
// else means the planner changed under this tool.
std::size_t item_file_chunk(const Plan& plan, const WorkItem& item, const std::vector<int>& file_chunk_of) {
  const std::span<const KvPiece> pieces = plan.item_pieces(item);
  if (pieces.size() != 1 || pieces[0].begin != 0 || pieces[0].end != kSeedChunkSize ||
      file_chunk_of[static_cast<std::size_t>(pieces[0].chunk)] < 0) {
    throw std::logic_error("seed check: a work item of the plan is not exactly one whole chunk of the file");
  }
  return static_cast<std::size_t>(file_chunk_of[static_cast<std::size_t>(pieces[0].chunk)]);
}

// Writes one (state, head) as the file's values: max, sum = exp(lse − max), attns = o · sum.
void store_state(const PartialStates& states, std::size_t head_state, SeedOutputs& outputs, std::size_t chunk,
                 std::size_t out_row) {
  const double max = states.max[head_state];
  const double sum = std::exp(static_cast<double>(states.lse[head_state]) - max);
  const float* o = &states.o[head_state * kDim];
  float* attns = &outputs.attns[chunk][out_row * kDim];
  for (std::size_t d = 0; d < kDim; ++d) attns[d] = static_cast<float>(o[d] * sum);
  outputs.maxs[chunk][out_row] = static_cast<float>(max);
  outputs.sums[chunk][out_row] = static_cast<float>(sum);
}

SeedOutputs outputs_from_states(const SeedShape& shape, const Plan& plan, const PartialStates& states,
                                const std::vector<int>& file_chunk_of) {
  const auto seqs = static_cast<std::size_t>(shape.seqs);
  const auto heads = static_cast<std::size_t>(shape.heads);
  SeedOutputs outputs = zero_outputs(shape);
  std::vector<int> written(static_cast<std::size_t>(shape.chunks) * seqs, 0);  // per (chunk, row)
  for (const WorkItem& item : plan.items) {
    const std::size_t chunk = item_file_chunk(plan, item, file_chunk_of);
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) {
      const std::size_t state = item.state_begin + (r - item.row_begin);
      const std::size_t row = plan.row_to_batch[r];  // batch entry i is file row i
      written[chunk * seqs + row] += 1;
      for (std::size_t h = 0; h < heads; ++h) store_state(states, state * heads + h, outputs, chunk, h * seqs + row);
    }
  }
  if (std::any_of(written.begin(), written.end(), [](int count) { return count != 1; })) {
    throw std::logic_error("seed check: the plan does not give every (chunk, row) exactly one state");
  }
  return outputs;
}

// ---------------------------------------------------------------------------------------------
// Comparing

// How one array's line (one chunk) compares; both rules are derived from it.
struct LineComparison {
  std::int64_t elements = 0;
  std::int64_t element_fails = 0;  // under the default rule
  double max_diff = 0.0;           // +inf when a difference is not finite
  double diff_squares = 0.0;
  double expected_squares = 0.0;
  bool non_finite = false;  // a computed value or a difference is NaN or Inf

  // ‖a − e‖ / ‖e‖; the absolute norm when the expected line is all zeros.
  double rel_norm() const {
    const double diff_norm = std::sqrt(diff_squares);
    return expected_squares > 0.0 ? diff_norm / std::sqrt(expected_squares) : diff_norm;
  }
  bool passes_strict(double tolerance) const { return !non_finite && rel_norm() <= tolerance; }
};

LineComparison compare_line(const std::vector<float>& actual, const std::vector<float>& expected) {
  LineComparison line;
  line.elements = static_cast<std::int64_t>(expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double a = actual[i];
    const double e = expected[i];
    double diff = std::abs(a - e);
    if (!std::isfinite(a) || !std::isfinite(diff)) {
      line.non_finite = true;
      line.element_fails += 1;
      diff = INFINITY;
    } else {
      if (!(diff <= std::max(0.1, 0.03 * std::abs(e)))) line.element_fails += 1;
      line.diff_squares += diff * diff;
    }
    line.expected_squares += e * e;
    line.max_diff = std::max(line.max_diff, diff);
  }
  return line;
}

struct ArrayRule {
  std::string_view name;
  double strict_tolerance;  // on the relative norm of each chunk's line
  std::vector<std::vector<float>> SeedOutputs::*lines;
};

const ArrayRule kArrayRules[] = {
    {"attns", 1e-2, &SeedOutputs::attns},
    {"maxs", 1e-4, &SeedOutputs::maxs},
    {"sums", 1e-3, &SeedOutputs::sums},
};

std::string detail_line(std::size_t chunk, std::string_view array, const LineComparison& line, std::int64_t fails,
                        std::int64_t total) {
  char text[200];
  std::snprintf(text, sizeof text, "  chunk %zu %-5.*s max_diff=%.3g rel_norm=%.3g fails=%lld/%lld\n", chunk,
                static_cast<int>(array.size()), array.data(), line.max_diff, line.rel_norm(), static_cast<long long>(fails),
                static_cast<long long>(total));
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

SeedFile read_seed_file(const std::string& path) {
  LineReader reader(path);
  SeedFile file;
  file.shape = read_header(reader);
  file.q = reader.floats(reader.next("Q"), q_values(file.shape), "Q");
  file.k = read_chunk_lines(reader, file.shape, "K", kv_chunk_values(file.shape));
  file.v = read_chunk_lines(reader, file.shape, "V", kv_chunk_values(file.shape));
  file.outputs.attns = read_chunk_lines(reader, file.shape, "attns", attns_chunk_values(file.shape));
  file.outputs.maxs = read_chunk_lines(reader, file.shape, "maxs", row_stat_values(file.shape));
  file.outputs.sums = read_chunk_lines(reader, file.shape, "sums", row_stat_values(file.shape));
  expect_end(reader);
  return file;
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
  const double per_chunk = 2.0 * static_cast<double>(kv_chunk_values(s)) + static_cast<double>(attns_chunk_values(s)) +
                           2.0 * static_cast<double>(row_stat_values(s));
  return static_cast<double>(q_values(s)) + s.chunks * per_chunk;
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
  static const Axes all{{"randn", "small", "uniform", "large", "positive"},
                        {1, 2, 4, 8, 16, 24, 32},
                        {1, 2, 4, 8, 12, 16},
                        {1, 2, 3, 4, 6, 8, 12, 16}};
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
  const Sampler sample = sampler_for(seed_case.pattern);
  const SeedShape& shape = seed_case.shape;
  if (shape.seqs < 1 || shape.heads < 1 || shape.chunks < 1) {
    throw Error(ErrorCode::invalid_argument, "generate_seed_file: S, H and C must each be at least 1");
  }
  Random random(seed_from(seed_file_name(seed_case)));
  SeedFile file;
  file.shape = shape;
  file.q = draw_bf16(random, sample, q_values(shape));
  for (int c = 0; c < shape.chunks; ++c) file.k.push_back(draw_bf16(random, sample, kv_chunk_values(shape)));
  for (int c = 0; c < shape.chunks; ++c) file.v.push_back(draw_bf16(random, sample, kv_chunk_values(shape)));
  file.outputs = reference_outputs(file);
  return file;
}

SeedOutputs reference_outputs(const SeedFile& file) {
  const SeedShape& shape = file.shape;
  const auto seqs = static_cast<std::size_t>(shape.seqs);
  const auto heads = static_cast<std::size_t>(shape.heads);
  SeedOutputs outputs = zero_outputs(shape);
  double weighted[kDim];
  for (std::size_t c = 0; c < static_cast<std::size_t>(shape.chunks); ++c) {
    for (std::size_t h = 0; h < heads; ++h) {
      const float* k = &file.k[c][h * kChunk * kDim];
      const float* v = &file.v[c][h * kChunk * kDim];
      for (std::size_t s = 0; s < seqs; ++s) {
        double max = 0.0;
        double sum = 0.0;
        attend_chunk_fp64(&file.q[(s * heads + h) * kDim], k, v, max, sum, weighted);
        const std::size_t row = h * seqs + s;
        for (std::size_t d = 0; d < kDim; ++d) outputs.attns[c][row * kDim + d] = static_cast<float>(weighted[d]);
        outputs.maxs[c][row] = static_cast<float>(max);
        outputs.sums[c][row] = static_cast<float>(sum);
      }
    }
  }
  return outputs;
}

SeedOutputs library_outputs(const SeedFile& file, Backend backend, int threads) {
  PrefixCache cache(seed_cache_config(file.shape, backend));
  const SeqId seq = add_file_sequence(cache, file);
  const std::vector<SeqId> batch = batch_of_rows(cache, seq, file.shape.seqs);
  // Sharing from 2 readers on (so S = 1 gives private items), one chunk per item, so that each
  // state is exactly one (chunk, row) of the file.
  const Plan plan = make_plan(cache, batch, PlanOptions{.min_shared_rows = 2, .max_item_tokens = kSeedChunkSize});
  const ConstTensorView q(file.q.data(), DType::f32, Device::cpu, {file.shape.seqs, file.shape.heads, kSeedHeadDim});
  const PartialStates states =
      backend_partial_states(backend, cache, plan, q, AttentionParams{.num_q_heads = file.shape.heads, .num_threads = threads});
  return outputs_from_states(file.shape, plan, states, file_chunk_of_cache_chunks(cache, seq));
}

CheckResult compare_seed_outputs(const SeedOutputs& actual, const SeedOutputs& expected, bool strict, bool verbose) {
  CheckResult result;
  for (const ArrayRule& rule : kArrayRules) {
    const auto& actual_lines = actual.*rule.lines;
    const auto& expected_lines = expected.*rule.lines;
    for (std::size_t c = 0; c < expected_lines.size(); ++c) {
      if (c >= actual_lines.size() || actual_lines[c].size() != expected_lines[c].size()) {
        throw std::logic_error("compare_seed_outputs: computed " + std::string(rule.name) + " has another shape than expected");
      }
      const LineComparison line = compare_line(actual_lines[c], expected_lines[c]);
      const std::int64_t fails = strict ? (line.passes_strict(rule.strict_tolerance) ? 0 : 1) : line.element_fails;
      const std::int64_t total = strict ? 1 : line.elements;
      result.fails += fails;
      result.total += total;
      result.max_diff = std::max(result.max_diff, line.max_diff);
      if (verbose) result.details += detail_line(c, rule.name, line, fails, total);
    }
  }
  result.passed = result.fails == 0;
  return result;
}

CheckResult check_seed_file(const std::string& path, const CheckOptions& options) {
  SeedFile file = read_seed_file(path);
  SeedOutputs computed = library_outputs(file, options.backend, options.threads);
  CheckResult result = compare_seed_outputs(computed, file.outputs, options.strict, options.verbose);
  if (!options.dump_path.empty()) {
    file.outputs = std::move(computed);
    write_seed_file(options.dump_path, file);
  }
  return result;
}

}  // namespace chunktree::harness
