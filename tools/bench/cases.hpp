// Benchmark cases: decode-step attention workloads with hierarchical shared prefixes, and the
// named presets that reproduce the papers' and peers' shapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chunktree::tools {

// Level i of a case: `segments` distinct runs of `tokens` tokens. The batch splits into
// `segments` equal contiguous groups of sequences, each reading one segment (uniform fan-out;
// deeper levels refine shallower ones).
struct SharedLevel {
  int segments = 1;
  int tokens = 0;
};

struct BenchCase {
  std::string name;
  int batch = 1;
  int q_heads = 32;
  int kv_heads = 32;
  int head_dim = 128;
  int chunk = 64;
  std::vector<SharedLevel> levels;  // root first; empty: nothing shared
  int suffix = 0;                   // each sequence's own tokens
  int queries = 1;                  // query tokens per sequence: the last `queries` of the suffix, causal
  bool through_levels = false;      // also time the levels API ('chunktree-levels')

  std::int64_t shared_tokens() const;    // Σ level tokens: what one sequence reads from shared levels
  std::int64_t sequence_tokens() const;  // shared_tokens + suffix
  std::int64_t unique_kv_tokens() const; // Σ segments·tokens + batch·suffix: KV stored (and read) once
  // 4 · batch · q_heads · head_dim · Σ over query tokens of the positions each sees
  // (sequence_tokens for one query token; queries·(L − queries) + queries·(queries + 1)/2 for several).
  double flops() const;
  double unique_bytes() const;           // K and V of unique tokens, plus Q and O of every query token, all bf16
  // The token ids of each sequence, in batch order: every (level, segment) and every suffix gets ids
  // of its own, so that a prefix cache finds the sharing by itself.
  std::vector<std::vector<std::int32_t>> sequences() const;
  std::int64_t cache_chunks() const;  // chunks a prefix cache needs to hold every sequence
};

struct Preset {
  std::string name;
  std::string description;
  std::vector<BenchCase> cases;
};

const std::vector<Preset>& presets();
const Preset& find_preset(std::string_view name);  // throws invalid_argument listing the names
std::string_view default_preset_name();

// {"preset": ..., "cases": [...]}: the cases as bench/baselines.py reads them.
std::string cases_json(const Preset& preset);

}  // namespace chunktree::tools
