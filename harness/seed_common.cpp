#include "harness/seed_common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "chunktree/numeric.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"

namespace chunktree::harness {
namespace {

constexpr std::size_t kChunk = kSeedChunkSize;
constexpr std::size_t kDim = kSeedHeadDim;

// ---------------------------------------------------------------------------------------------
// The header

// Lines longer than this are refused before anything is allocated: a corrupt header could ask
// for terabytes otherwise.
constexpr double kMaxLineValues = double(1 << 28);

constexpr const char* kHeaderForms =
    "'n_seqs 64 128 n_heads n_chunks' (chunk-first, 5 integers) or 'n_seqs 64 128 n_heads n_chunks seq_tokens "
    "n_shared_chunks' (sequence-first, 7 integers)";

// seq_tokens and n_shared_chunks of a sequence-first header, checked against n_chunks.
void read_seq_first_words(LineReader& reader, const std::vector<std::string_view>& words, SeedHeader& header) {
  const std::int64_t chunks = header.shape.chunks;
  const std::int64_t tokens = reader.integer(words[5], "seq_tokens (header word 6)", 1, static_cast<std::int64_t>(kMaxLineValues));
  const std::int64_t shared = reader.integer(words[6], "n_shared_chunks (header word 7)", 0, static_cast<std::int64_t>(kMaxLineValues));
  if (tokens <= static_cast<std::int64_t>(kChunk) * (chunks - 1) || tokens > static_cast<std::int64_t>(kChunk) * chunks) {
    reader.fail("seq_tokens is " + std::to_string(tokens) + ", but with n_chunks " + std::to_string(chunks) +
                " it must be from " + std::to_string(kChunk * (chunks - 1) + 1) + " to " + std::to_string(kChunk * chunks) +
                " (every chunk holds at least one of the tokens)");
  }
  if (shared > chunks) {
    reader.fail("n_shared_chunks is " + std::to_string(shared) + ", more than n_chunks (" + std::to_string(chunks) + ")");
  }
  header.seq_tokens = static_cast<int>(tokens);
  header.shared_chunks = static_cast<int>(shared);
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

// ---------------------------------------------------------------------------------------------
// Computing through the library

CacheConfig seed_cache_config(const SeedShape& shape, Backend backend) {
  CacheConfig config;
  config.num_layers = 1;
  config.num_kv_heads = shape.heads;
  config.head_dim = kSeedHeadDim;
  config.chunk_size = kSeedChunkSize;
  config.dtype = seed_cache_dtype(backend);
  config.capacity_chunks = shape.chunks + 1;  // one spare chunk: a margin that costs little
  config.device = backend_device(backend);
  return config;
}

// K or V as the file stores it (per chunk [H, 64, 128]) in write_kv's layout [C·64, H, 128].
std::vector<float> token_major(const ChunkLines& chunks, std::size_t heads) {
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

// Adds one sequence of the inputs' tokens holding the file's K and V.
SeqId add_file_sequence(PrefixCache& cache, const SeedInputs& inputs) {
  std::vector<Token> tokens(static_cast<std::size_t>(inputs.tokens));
  std::iota(tokens.begin(), tokens.end(), Token{0});
  const AddResult added = cache.add(tokens);
  const auto heads = static_cast<std::size_t>(inputs.shape.heads);
  const std::vector<float> k = token_major(inputs.k, heads);
  const std::vector<float> v = token_major(inputs.v, heads);
  // Only the first `tokens` rows of the token-major arrays: a cut last chunk's tail is not read.
  const std::vector<std::int64_t> shape{inputs.tokens, inputs.shape.heads, kSeedHeadDim};
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

// The file chunk a work item reads. The plan options make every item one whole chunk (a cut last
// chunk: all of its tokens); anything else means the planner changed under this tool.
std::size_t item_file_chunk(const SeedInputs& inputs, const Plan& plan, const WorkItem& item,
                            const std::vector<int>& file_chunk_of) {
  const std::span<const KvPiece> pieces = plan.item_pieces(item);
  const int chunk = pieces.size() == 1 ? file_chunk_of[static_cast<std::size_t>(pieces[0].chunk)] : -1;
  if (chunk < 0 || pieces[0].begin != 0 || static_cast<int>(pieces[0].end) != chunk_tokens(inputs, static_cast<std::size_t>(chunk))) {
    throw std::logic_error("seed check: a work item of the plan is not exactly one whole chunk of the file");
  }
  return static_cast<std::size_t>(chunk);
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

SeedOutputs zero_outputs(const SeedShape& shape) {
  const auto chunks = static_cast<std::size_t>(shape.chunks);
  SeedOutputs outputs;
  outputs.attns.assign(chunks, std::vector<float>(seed_row_values(shape) * kDim));
  outputs.maxs.assign(chunks, std::vector<float>(seed_row_values(shape)));
  outputs.sums.assign(chunks, std::vector<float>(seed_row_values(shape)));
  return outputs;
}

std::size_t row_index(RowOrder order, const SeedShape& shape, std::size_t seq, std::size_t head) {
  return order == RowOrder::heads_major ? head * static_cast<std::size_t>(shape.seqs) + seq
                                        : seq * static_cast<std::size_t>(shape.heads) + head;
}

SeedOutputs outputs_from_states(const SeedInputs& inputs, RowOrder order, const Plan& plan, const PartialStates& states,
                                const std::vector<int>& file_chunk_of) {
  const SeedShape& shape = inputs.shape;
  const auto seqs = static_cast<std::size_t>(shape.seqs);
  const auto heads = static_cast<std::size_t>(shape.heads);
  SeedOutputs outputs = zero_outputs(shape);
  std::vector<int> written(static_cast<std::size_t>(shape.chunks) * seqs, 0);  // per (chunk, row)
  for (const WorkItem& item : plan.items) {
    const std::size_t chunk = item_file_chunk(inputs, plan, item, file_chunk_of);
    for (std::uint32_t r = item.row_begin; r < item.row_end; ++r) {
      const std::size_t state = item.state_begin + (r - item.row_begin);
      const std::size_t row = plan.row_to_batch[r];  // batch entry i is file row i
      written[chunk * seqs + row] += 1;
      for (std::size_t h = 0; h < heads; ++h) {
        store_state(states, state * heads + h, outputs, chunk, row_index(order, shape, row, h));
      }
    }
  }
  if (std::any_of(written.begin(), written.end(), [](int count) { return count != 1; })) {
    throw std::logic_error("seed check: the plan does not give every (chunk, row) exactly one state");
  }
  return outputs;
}

// ---------------------------------------------------------------------------------------------
// Comparing

// How one line (one chunk of one array) compares; both rules are derived from it.
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

std::string detail_line(std::size_t chunk, std::string_view array, const LineComparison& line, std::int64_t fails,
                        std::int64_t total) {
  char text[200];
  std::snprintf(text, sizeof text, "  chunk %zu %-5.*s max_diff=%.3g rel_norm=%.3g fails=%lld/%lld\n", chunk,
                static_cast<int>(array.size()), array.data(), line.max_diff, line.rel_norm(), static_cast<long long>(fails),
                static_cast<long long>(total));
  return text;
}

std::string counts_text(const CheckResult& result) {
  char text[120];
  std::snprintf(text, sizeof text, "fails=%lld/%lld max_diff=%.6g", static_cast<long long>(result.fails),
                static_cast<long long>(result.total), result.max_diff);
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

SeedHeader read_seed_header(LineReader& reader) {
  const std::vector<std::string_view> words = LineReader::words(reader.next("the header"));
  if (words.size() != 5 && words.size() != 7) {
    reader.fail(std::string("the header must be ") + kHeaderForms + ", but it has " + std::to_string(words.size()) + " words");
  }
  constexpr auto kMaxExtent = static_cast<std::int64_t>(kMaxLineValues);
  const std::int64_t seqs = reader.integer(words[0], "n_seqs (header word 1)", 1, kMaxExtent);
  const std::int64_t chunk_size = reader.integer(words[1], "the chunk size (header word 2)");
  const std::int64_t head_dim = reader.integer(words[2], "the head dim (header word 3)");
  const std::int64_t heads = reader.integer(words[3], "n_heads (header word 4)", 1, kMaxExtent);
  const std::int64_t chunks = reader.integer(words[4], "n_chunks (header word 5)", 1, kMaxExtent / static_cast<std::int64_t>(kChunk));
  if (chunk_size != kSeedChunkSize) {
    reader.fail("the header's chunk size is " + std::to_string(chunk_size) + "; seed-format files use 64");
  }
  if (head_dim != kSeedHeadDim) {
    reader.fail("the header's head dim is " + std::to_string(head_dim) + "; seed-format files use 128");
  }
  const double longest_line = std::max(static_cast<double>(seqs), double(kChunk)) * static_cast<double>(heads) * kDim;
  if (longest_line > kMaxLineValues) {
    char values[32];
    std::snprintf(values, sizeof values, "%.0f", longest_line);
    reader.fail(std::string("the header's shape makes lines of ") + values +
                " values (the larger of n_seqs and 64, times n_heads, times 128); this tool reads lines of at most 2^28");
  }
  SeedHeader header;
  header.shape = SeedShape{static_cast<int>(seqs), static_cast<int>(heads), static_cast<int>(chunks)};
  header.seq_first = words.size() == 7;
  if (header.seq_first) read_seq_first_words(reader, words, header);
  return header;
}

ChunkLines read_chunk_lines(LineReader& reader, int count, std::string_view array, std::size_t values) {
  ChunkLines lines;  // grows with the lines read: the header's count is only a claim
  for (int c = 0; c < count; ++c) {
    const std::string what = std::string(array) + " chunk " + std::to_string(c);
    lines.push_back(reader.floats(reader.next(what), values, what));
  }
  return lines;
}

void expect_end(LineReader& reader, std::string_view promise) {
  while (!reader.at_end()) {
    if (!LineReader::words(reader.next("the end of the file")).empty()) {
      reader.fail("unexpected line after the last array (the header promises exactly " + std::string(promise) + ")");
    }
  }
}

std::size_t seed_q_values(const SeedShape& s) { return seed_row_values(s) * kDim; }
std::size_t seed_kv_chunk_values(const SeedShape& s) { return static_cast<std::size_t>(s.heads) * kChunk * kDim; }
std::size_t seed_row_values(const SeedShape& s) { return static_cast<std::size_t>(s.heads) * static_cast<std::size_t>(s.seqs); }

std::vector<std::string_view> seed_patterns() {
  std::vector<std::string_view> names;
  for (const Pattern& pattern : kPatterns) names.push_back(pattern.name);
  return names;
}

std::vector<float> draw_seed_bf16(Random& random, std::string_view pattern, std::size_t count) {
  const Sampler sample = sampler_for(pattern);
  std::vector<float> values(count);
  for (float& value : values) value = round_to(DType::bf16, static_cast<float>(sample(random)));
  return values;
}

int chunk_tokens(const SeedInputs& inputs, std::size_t chunk) {
  return std::min(kSeedChunkSize, inputs.tokens - static_cast<int>(chunk) * kSeedChunkSize);
}

void for_each_fp64_state(const SeedInputs& inputs, const Fp64StateVisitor& visit) {
  const double scale = 1.0 / std::sqrt(double(kDim));
  const auto heads = static_cast<std::size_t>(inputs.shape.heads);
  double scores[kChunk];
  double weighted[kDim];
  for (std::size_t c = 0; c < inputs.k.size(); ++c) {
    const auto tokens = static_cast<std::size_t>(chunk_tokens(inputs, c));
    for (std::size_t s = 0; s < static_cast<std::size_t>(inputs.shape.seqs); ++s) {
      for (std::size_t h = 0; h < heads; ++h) {
        const float* q = &inputs.q[(s * heads + h) * kDim];
        const float* k = &inputs.k[c][h * kChunk * kDim];
        const float* v = &inputs.v[c][h * kChunk * kDim];
        double max = -INFINITY;
        for (std::size_t j = 0; j < tokens; ++j) {
          double dot = 0.0;
          for (std::size_t d = 0; d < kDim; ++d) dot += static_cast<double>(q[d]) * k[j * kDim + d];
          scores[j] = dot * scale;
          max = std::max(max, scores[j]);
        }
        double sum = 0.0;
        std::fill(weighted, weighted + kDim, 0.0);
        for (std::size_t j = 0; j < tokens; ++j) {
          const double p = std::exp(scores[j] - max);
          sum += p;
          for (std::size_t d = 0; d < kDim; ++d) weighted[d] += p * v[j * kDim + d];
        }
        visit(c, s, h, max, sum, weighted);
      }
    }
  }
}

SeedOutputs library_chunk_states(const SeedInputs& inputs, RowOrder order, Backend backend, int threads) {
  PrefixCache cache(seed_cache_config(inputs.shape, backend));
  const SeqId seq = add_file_sequence(cache, inputs);
  const std::vector<SeqId> batch = batch_of_rows(cache, seq, inputs.shape.seqs);
  // Sharing from 2 readers on (so S = 1 gives private items), one chunk per item, so that each
  // state is exactly one (chunk, row) of the file.
  const Plan plan = make_plan(cache, batch, PlanOptions{.min_shared_rows = 2, .max_item_tokens = kSeedChunkSize});
  const ConstTensorView q(inputs.q.data(), DType::f32, Device::cpu, {inputs.shape.seqs, inputs.shape.heads, kSeedHeadDim});
  const PartialStates states = backend_partial_states(backend, cache, plan, q,
                                                      AttentionParams{.num_q_heads = inputs.shape.heads, .num_threads = threads});
  return outputs_from_states(inputs, order, plan, states, file_chunk_of_cache_chunks(cache, seq));
}

void compare_chunk_lines(std::string_view name, double strict_tolerance, const ChunkLines& actual, const ChunkLines& expected,
                         const CheckOptions& options, CheckResult& result) {
  for (std::size_t c = 0; c < expected.size(); ++c) {
    if (c >= actual.size() || actual[c].size() != expected[c].size()) {
      throw std::logic_error("seed check: computed " + std::string(name) + " has another shape than expected");
    }
    const LineComparison line = compare_line(actual[c], expected[c]);
    const std::int64_t fails = options.strict ? (line.passes_strict(strict_tolerance) ? 0 : 1) : line.element_fails;
    const std::int64_t total = options.strict ? 1 : line.elements;
    result.fails += fails;
    result.total += total;
    result.max_diff = std::max(result.max_diff, line.max_diff);
    if (options.verbose) result.details += detail_line(c, name, line, fails, total);
  }
  result.passed = result.fails == 0;
}

InputRounding round_inputs(DType dtype, std::vector<float>& q, ChunkLines& k, ChunkLines& v) {
  InputRounding rounding;
  const auto round_line = [&](std::vector<float>& line) {
    for (float& value : line) {
      const float rounded = round_to(dtype, value);
      rounding.total += 1;
      if (rounded == value || (std::isnan(rounded) && std::isnan(value))) continue;
      rounding.rounded += 1;
      rounding.max_change = std::max(rounding.max_change, std::abs(static_cast<double>(rounded) - value));
      value = rounded;
    }
  };
  round_line(q);
  for (ChunkLines* lines : {&k, &v}) {
    for (std::vector<float>& line : *lines) round_line(line);
  }
  return rounding;
}

DType seed_cache_dtype(Backend backend) {
  // f32 holds any file's values exactly; the GPU stores bf16, which holds generated files exactly.
  return backend == Backend::cpu ? DType::f32 : DType::bf16;
}

CheckResult judge_rounded_check(const InputRounding& rounding, DType dtype,
                                const std::function<CheckResult(bool against_rounded_inputs)>& compare) {
  if (rounding.rounded == 0) return compare(false);
  CheckResult verdict = compare(true);
  const CheckResult beside = compare(false);
  const std::string name(chunktree::to_string(dtype));
  char text[600];  // three lines of at most ~150 characters
  std::snprintf(text, sizeof text,
                "  inputs: %lld of %lld Q/K/V values are not exact in %s (the cache's dtype) and were rounded, by at most %.3g\n"
                "  against fp64 on the rounded inputs (the verdict): %s\n"
                "  against the file's expected values (not judged):  %s\n",
                static_cast<long long>(rounding.rounded), static_cast<long long>(rounding.total), name.c_str(),
                rounding.max_change, counts_text(verdict).c_str(), counts_text(beside).c_str());
  verdict.details = text + verdict.details;
  verdict.summary_note = "verdict=fp64-on-" + name + "-rounded-inputs file_expected: " + counts_text(beside);
  return verdict;
}

}  // namespace chunktree::harness
