// Checking a tree-format file (docs/FORMATS.md, "What check does with a tree file"): the workload
// through the library as a user would, under two plans and through the levels API, compared
// with the file's expected values; and the dump of what was computed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chunktree/numeric.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
#include "harness/backend.hpp"
#include "harness/check.hpp"
#include "harness/host_memory.hpp"
#include "harness/tree_format.hpp"
#include "harness/tree_levels.hpp"

namespace chunktree::harness {
namespace {

std::string short_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3g", value);
  return buffer;
}

// ---------------------------------------------------------------------------------------
// Running a workload through the library as a user would: cache, add, write_kv, plan, attend.

// What the library computed under one set of plan options (or through the levels API).
struct PlanRun {
  const char* name = "";
  std::size_t items = 0;
  std::size_t shared_items = 0;
  std::vector<float> o;    // [sequences · queries_per_seq, q_heads, head_dim]
  std::vector<float> lse;  // [sequences · queries_per_seq, q_heads]
};

struct LibraryRun {
  std::vector<std::string> sharing_problems;  // sequences whose add shared other than the tree says
  std::vector<PlanRun> plans;                 // the default plan first
};

CacheConfig cache_config_for(const TreeWorkload& w, Backend backend) {
  if (backend == Backend::cuda && w.dtype == DType::f32) {
    throw Error(ErrorCode::unsupported, "this tree file stores f32 K/V, which only the cpu backend runs; use --backend cpu");
  }
  CacheConfig config;
  config.device = backend_device(backend);
  config.num_layers = 1;
  config.num_kv_heads = w.kv_heads;
  config.head_dim = w.head_dim;
  config.chunk_size = w.chunk_size;
  config.dtype = w.dtype;
  // Each node needs at most ceil(length / chunk) new chunks; the +1 is slack for alignment.
  config.capacity_chunks = 0;
  for (const TreeNode& node : w.nodes) config.capacity_chunks += (node.length + w.chunk_size - 1) / w.chunk_size + 1;
  return config;
}

// Token ids unique per (node, position): token p of node i is first_token[i] + p. Siblings
// thus never start alike, and the cache finds exactly the file's sharing.
std::vector<Token> first_tokens(const TreeWorkload& w) {
  std::vector<Token> first;
  Token next = 0;
  for (const TreeNode& node : w.nodes) {
    first.push_back(next);
    next += static_cast<Token>(node.length);
  }
  return first;
}

std::vector<Token> sequence_tokens(const TreeWorkload& w, std::span<const std::int32_t> path,
                                   std::span<const Token> first) {
  std::vector<Token> tokens;
  for (std::int32_t node : path) {
    const auto begin = first[static_cast<std::size_t>(node)];
    for (std::int64_t p = 0; p < w.nodes[static_cast<std::size_t>(node)].length; ++p)
      tokens.push_back(begin + static_cast<Token>(p));
  }
  return tokens;
}

// Tokens the cache should already hold when this path is added: the leading nodes that an
// earlier sequence's path went through. Marks the whole path as stored.
std::int64_t expected_cached_tokens(const TreeWorkload& w, std::span<const std::int32_t> path,
                                    std::vector<bool>& stored) {
  std::int64_t cached = 0;
  bool sharing = true;
  for (std::int32_t node : path) {
    sharing = sharing && stored[static_cast<std::size_t>(node)];
    if (sharing) cached += w.nodes[static_cast<std::size_t>(node)].length;
    stored[static_cast<std::size_t>(node)] = true;
  }
  return cached;
}

// Writes the KV that `add` did not find cached: slot j of `added` holds token
// cached_tokens + j of the sequence, which is some position of some node on its path.
void write_new_kv(PrefixCache& cache, const TreeWorkload& w, std::span<const std::int32_t> path,
                  const AddResult& added) {
  if (added.slots.empty()) return;
  const std::size_t width = kv_width(w);
  std::vector<float> k;
  std::vector<float> v;
  std::int64_t node_start = 0;  // position in the sequence of the node's first token
  for (std::int32_t index : path) {
    const TreeNode& node = w.nodes[static_cast<std::size_t>(index)];
    const std::int64_t first_new = std::clamp<std::int64_t>(added.cached_tokens - node_start, 0, node.length);
    const auto begin = static_cast<std::ptrdiff_t>(static_cast<std::size_t>(first_new) * width);
    k.insert(k.end(), node.k.begin() + begin, node.k.end());
    v.insert(v.end(), node.v.begin() + begin, node.v.end());
    node_start += node.length;
  }
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(k.size() / width), w.kv_heads, w.head_dim};
  cache.write_kv(0, added.slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                 ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
}

// Adds every sequence in file order and writes its new KV; returns the batch.
std::vector<SeqId> load_sequences(PrefixCache& cache, const TreeWorkload& w,
                                  std::vector<std::string>& sharing_problems) {
  const std::vector<Token> first = first_tokens(w);
  std::vector<bool> stored(w.nodes.size(), false);
  std::vector<SeqId> batch;
  for (std::size_t s = 0; s < w.sequences.size(); ++s) {
    const std::vector<std::int32_t> path = w.path(w.sequences[s].node);
    const AddResult added = cache.add(sequence_tokens(w, path, first));
    const std::int64_t expected = expected_cached_tokens(w, path, stored);
    if (added.cached_tokens != expected) {
      sharing_problems.push_back("sequence " + std::to_string(s) + ": add found " +
                                 std::to_string(added.cached_tokens) + " tokens cached, but it shares " +
                                 std::to_string(expected) + " with the sequences before it");
    }
    write_new_kv(cache, w, path, added);
    batch.push_back(added.seq);
  }
  return batch;
}

// Q of all sequences, [sequences · queries_per_seq, q_heads, head_dim], in the cache's dtype as
// a model would pass it.
std::vector<std::byte> query_batch(const TreeWorkload& w) {
  const std::size_t width = q_width(w) * static_cast<std::size_t>(w.queries_per_seq);
  std::vector<std::byte> q(w.sequences.size() * width * dtype_size(w.dtype));
  for (std::size_t s = 0; s < w.sequences.size(); ++s) {
    for (std::size_t i = 0; i < width; ++i) {
      store_element(q.data(), w.dtype, static_cast<std::int64_t>(s * width + i), w.sequences[s].q[i]);
    }
  }
  return q;
}

AttentionParams attention_params(const TreeWorkload& w, int threads) {
  AttentionParams params;
  params.num_q_heads = w.q_heads;
  params.scale = w.softmax_scale();
  params.num_threads = threads;
  return params;
}

// Output arrays for every query token of every sequence.
PlanRun empty_run(const TreeWorkload& w, const char* name) {
  PlanRun run;
  run.name = name;
  const std::size_t tokens = w.sequences.size() * static_cast<std::size_t>(w.queries_per_seq);
  run.o.resize(tokens * q_width(w));
  run.lse.resize(tokens * static_cast<std::size_t>(w.q_heads));
  return run;
}

PlanRun attend_with_plan(Backend backend, const PrefixCache& cache, std::span<const SeqId> batch, const TreeWorkload& w,
                         const std::vector<std::byte>& q, int threads, const char* name, const PlanOptions& options) {
  const Plan plan = make_plan(cache, batch, options);
  PlanRun run = empty_run(w, name);
  run.items = plan.items.size();
  run.shared_items = plan.num_shared_items;
  const auto tokens = static_cast<std::int64_t>(w.sequences.size()) * w.queries_per_seq;
  backend_attend(backend, cache, plan, ConstTensorView(q.data(), w.dtype, Device::cpu, {tokens, w.q_heads, w.head_dim}),
                 TensorView{run.o.data(), DType::f32, Device::cpu, {tokens, w.q_heads, w.head_dim}},
                 TensorView{run.lse.data(), DType::f32, Device::cpu, {tokens, w.q_heads}}, attention_params(w, threads));
  return run;
}

LibraryRun run_through_library(const TreeWorkload& w, Backend backend, int threads) {
  PrefixCache cache(cache_config_for(w, backend));
  LibraryRun run;
  const std::vector<SeqId> batch = load_sequences(cache, w, run.sharing_problems);
  const std::vector<std::byte> q = query_batch(w);
  // Both plans must be exact: the default one, and one where every node is its own shared
  // span and items are cut at every chunk, so that many partial states get merged.
  PlanOptions whole;
  whole.queries_per_seq = w.queries_per_seq;
  PlanOptions split = whole;
  split.min_shared_rows = 1;
  split.max_item_tokens = w.chunk_size;
  run.plans.push_back(attend_with_plan(backend, cache, batch, w, q, threads, "default", whole));
  run.plans.push_back(attend_with_plan(backend, cache, batch, w, q, threads, "split", split));
  // The same workload through the levels API, as an engine that owns its KV would call it.
  PlanRun levels = empty_run(w, "levels");
  const TreeLevels tree_levels(w);
  levels.items = tree_levels.segments();
  levels.shared_items = tree_levels.shared_segments();
  tree_levels.attend(backend, q, levels.o, levels.lse, attention_params(w, threads));
  run.plans.push_back(std::move(levels));
  return run;
}

// ---------------------------------------------------------------------------------------
// Comparing with the expected values

// How one sequence of one plan compared. A ratio is a difference over what the rule allows.
struct SequenceScore {
  std::size_t sequence = 0;
  const char* plan = "";
  double o_max_diff = 0.0;
  double o_relative_norm = 0.0;
  double lse_max_diff = 0.0;
  double worst_ratio = 0.0;  // above 1: failed
};

double difference(float actual, float expected) {
  if (!std::isfinite(actual) || !std::isfinite(expected)) return std::numeric_limits<double>::infinity();
  return std::abs(static_cast<double>(actual) - static_cast<double>(expected));
}

// ‖a − e‖ / ‖e‖ (0 when both are zero, infinity when ‖e‖ is zero alone or a value is not finite).
double relative_norm(std::span<const float> actual, std::span<const float> expected) {
  double error = 0.0;
  double norm = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double diff = difference(actual[i], expected[i]);
    error += diff * diff;
    norm += static_cast<double>(expected[i]) * expected[i];
  }
  if (!std::isfinite(error)) return std::numeric_limits<double>::infinity();
  if (norm == 0.0) return error == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(error / norm);
}

// Default rule: |a − e| ≤ max(0.1, 0.03·|e|) per element.
double default_ratio(float actual, float expected) {
  return difference(actual, expected) / std::max(0.1, 0.03 * std::abs(static_cast<double>(expected)));
}

// Strict rule for one LSE: |a − e| ≤ 1e-4·max(1, |e|).
double strict_lse_ratio(float actual, float expected) {
  return difference(actual, expected) / (1e-4 * std::max(1.0, std::abs(static_cast<double>(expected))));
}

// Counts one comparison of ratio `ratio` into the result and the score.
void tally(double ratio, CheckResult& result, SequenceScore& score) {
  result.total += 1;
  if (!(ratio <= 1.0)) result.fails += 1;
  score.worst_ratio = std::max(score.worst_ratio, std::isnan(ratio) ? std::numeric_limits<double>::infinity() : ratio);
}

SequenceScore compare_sequence(std::span<const float> o, std::span<const float> lse, const TreeSequence& expected,
                               bool strict, CheckResult& result) {
  SequenceScore score;
  for (std::size_t i = 0; i < o.size(); ++i)
    score.o_max_diff = std::max(score.o_max_diff, difference(o[i], expected.o[i]));
  for (std::size_t h = 0; h < lse.size(); ++h)
    score.lse_max_diff = std::max(score.lse_max_diff, difference(lse[h], expected.lse[h]));
  score.o_relative_norm = relative_norm(o, expected.o);
  result.max_diff = std::max({result.max_diff, score.o_max_diff, score.lse_max_diff});
  if (strict) {
    tally(score.o_relative_norm / 1e-2, result, score);
    for (std::size_t h = 0; h < lse.size(); ++h) tally(strict_lse_ratio(lse[h], expected.lse[h]), result, score);
  } else {
    for (std::size_t i = 0; i < o.size(); ++i) tally(default_ratio(o[i], expected.o[i]), result, score);
    for (std::size_t h = 0; h < lse.size(); ++h) tally(default_ratio(lse[h], expected.lse[h]), result, score);
  }
  return score;
}

std::string describe(const SequenceScore& score, const TreeWorkload& w) {
  const TreeSequence& sequence = w.sequences[score.sequence];
  std::int64_t tokens = 0;
  for (std::int32_t node : w.path(sequence.node)) tokens += w.nodes[static_cast<std::size_t>(node)].length;
  std::string text = "sequence " + std::to_string(score.sequence);
  if (sequence.line > 0) text += " (line " + std::to_string(sequence.line) + ")";
  text += ", node " + std::to_string(w.nodes[static_cast<std::size_t>(sequence.node)].id) + ", " +
          std::to_string(tokens) + " tokens, " + score.plan + " plan: O max diff " + short_number(score.o_max_diff) +
          ", O rel norm " + short_number(score.o_relative_norm) + ", LSE max diff " + short_number(score.lse_max_diff);
  return text + (score.worst_ratio > 1.0 ? "  FAILED" : "");
}

// A few lines for -v: the plans, sharing problems, and the worst sequences.
std::string details_text(const TreeWorkload& w, const LibraryRun& run, std::vector<SequenceScore>& scores) {
  constexpr std::size_t kShown = 5;
  std::string text;
  for (const PlanRun& plan : run.plans) {
    text += std::string(plan.name) + " plan: " + std::to_string(plan.items) + " items (" +
            std::to_string(plan.shared_items) + " shared)\n";
  }
  for (const std::string& problem : run.sharing_problems) text += "sharing FAILED: " + problem + "\n";
  const std::size_t shown = std::min(kShown, scores.size());
  std::partial_sort(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(shown), scores.end(),
                    [](const SequenceScore& a, const SequenceScore& b) { return a.worst_ratio > b.worst_ratio; });
  const auto failed =
      std::count_if(scores.begin(), scores.end(), [](const SequenceScore& s) { return s.worst_ratio > 1.0; });
  text += "worst of " + std::to_string(scores.size()) + " (sequence, plan) results, " + std::to_string(failed) +
          " failed:\n";
  for (std::size_t i = 0; i < shown; ++i) text += "  " + describe(scores[i], w) + "\n";
  return text;
}

CheckResult compare_run(const TreeWorkload& w, const LibraryRun& run, bool strict, bool verbose) {
  CheckResult result;
  // One comparison per sequence: did add share exactly what the tree says?
  result.total += static_cast<std::int64_t>(w.sequences.size());
  result.fails += static_cast<std::int64_t>(run.sharing_problems.size());
  std::vector<SequenceScore> scores;
  const std::size_t width = q_width(w) * static_cast<std::size_t>(w.queries_per_seq);
  const auto heads = static_cast<std::size_t>(w.q_heads * w.queries_per_seq);
  for (const PlanRun& plan : run.plans) {
    for (std::size_t s = 0; s < w.sequences.size(); ++s) {
      SequenceScore score =
          compare_sequence(std::span(plan.o).subspan(s * width, width), std::span(plan.lse).subspan(s * heads, heads),
                           w.sequences[s], strict, result);
      score.sequence = s;
      score.plan = plan.name;
      scores.push_back(score);
    }
  }
  result.passed = result.fails == 0;
  if (verbose) result.details = details_text(w, run, scores);
  return result;
}

// Writes the workload read from `path` to `target`, with the default plan's O and LSE as the
// expected values.
void dump(const std::string& path, const std::string& target, TreeWorkload w, const PlanRun& computed, Backend backend) {
  const std::size_t width = q_width(w) * static_cast<std::size_t>(w.queries_per_seq);
  const auto heads = static_cast<std::size_t>(w.q_heads * w.queries_per_seq);
  for (std::size_t s = 0; s < w.sequences.size(); ++s) {
    w.sequences[s].o.assign(computed.o.begin() + static_cast<std::ptrdiff_t>(s * width),
                            computed.o.begin() + static_cast<std::ptrdiff_t>((s + 1) * width));
    w.sequences[s].lse.assign(computed.lse.begin() + static_cast<std::ptrdiff_t>(s * heads),
                              computed.lse.begin() + static_cast<std::ptrdiff_t>((s + 1) * heads));
  }
  w.comment = "dump of " + path + ": O and LSE as the " + std::string(backend_name(backend)) + " backend computed them (default plan)";
  write_tree_file(target, w);
}

// ---------------------------------------------------------------------------------------
// Host memory: a file of a few MB can describe a workload that needs far more (every node takes
// chunks of its own; every row that reads a node gets a partial state of it; the levels run copies
// each sequence's own nodes), so the cpu backend's check bounds what it will allocate first and
// reserves it (HostMemoryReservation), rather than let the system kill the process.

// What the cpu backend's check of `w` allocates at most, in bytes.
struct HostNeed {
  double cache = 0.0;   // K and V
  double states = 0.0;  // the split plan's partial states: a piece per chunk of every node on every path, each a state of every q head and query token
  double levels = 0.0;  // the levels run's KV: each node once (odd ones in a page pool with a spare page: TreeLevels) and each sequence's own nodes

  double total() const { return cache + states + levels; }
  std::string parts() const {
    return "cache " + gib_text(cache) + ", partial states " + gib_text(states) + ", the levels run's KV " + gib_text(levels);
  }
};

HostNeed cpu_check_need(const TreeWorkload& w) {
  HostNeed need;
  const double kv_token_bytes = 2.0 * static_cast<double>(kv_width(w) * dtype_size(w.dtype));
  need.cache = static_cast<double>(cache_config_for(w, Backend::cpu).capacity_chunks) * w.chunk_size * kv_token_bytes;
  std::vector<double> pieces_to(w.nodes.size(), 0.0);  // every parent comes before its children
  double level_tokens = 0.0;
  for (std::size_t n = 0; n < w.nodes.size(); ++n) {
    const TreeNode& node = w.nodes[n];
    const std::int64_t chunks = (node.length + w.chunk_size - 1) / w.chunk_size;
    pieces_to[n] = static_cast<double>(chunks + 1) + (node.parent >= 0 ? pieces_to[static_cast<std::size_t>(node.parent)] : 0.0);
    level_tokens += static_cast<double>(n % 2 == 1 ? (chunks + 1) * w.chunk_size : node.length);
  }
  const std::vector<std::int64_t> ends = w.path_lengths();
  double pieces = 0.0;
  for (const TreeSequence& sequence : w.sequences) {
    pieces += pieces_to[static_cast<std::size_t>(sequence.node)];
    const std::int64_t shared_end = ends[static_cast<std::size_t>(sequence.node)] - w.queries_per_seq;
    for (std::int32_t n = sequence.node; n >= 0 && ends[static_cast<std::size_t>(n)] > shared_end; n = w.nodes[static_cast<std::size_t>(n)].parent) {
      level_tokens += static_cast<double>(w.nodes[static_cast<std::size_t>(n)].length);
    }
  }
  need.states = pieces * w.queries_per_seq * w.q_heads * (w.head_dim + 2) * static_cast<double>(sizeof(float));
  need.levels = level_tokens * kv_token_bytes;
  return need;
}

}  // namespace

CheckResult check_tree_file(const std::string& path, const CheckOptions& options) {
  const TreeWorkload workload = read_tree_file(path);
  std::optional<HostMemoryReservation> memory;  // held until the check's arrays are freed
  if (options.backend == Backend::cpu) {
    const HostNeed need = cpu_check_need(workload);
    memory.emplace(path, need.total(), need.parts());
  }
  const LibraryRun run = run_through_library(workload, options.backend, options.threads);
  CheckResult result = compare_run(workload, run, options.strict, options.verbose);
  if (!options.dump_path.empty()) dump(path, options.dump_path, workload, run.plans.front(), options.backend);
  return result;
}

}  // namespace chunktree::harness
