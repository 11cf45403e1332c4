#include "bench/cases.hpp"

#include <string>
#include <tuple>

#include "chunktree/types.hpp"

namespace chunktree::tools {
namespace {

BenchCase make_case(std::string name, int batch, int q_heads, int kv_heads, std::vector<SharedLevel> levels, int suffix) {
  BenchCase c;
  c.name = std::move(name);
  c.batch = batch;
  c.q_heads = q_heads;
  c.kv_heads = kv_heads;
  c.levels = std::move(levels);
  c.suffix = suffix;
  return c;
}

// One shared prompt of `prefix` tokens (none when 0) and `suffix` own tokens per sequence.
BenchCase one_prompt(std::string name, int batch, int q_heads, int kv_heads, int prefix, int suffix) {
  std::vector<SharedLevel> levels;
  if (prefix > 0) levels.push_back(SharedLevel{1, prefix});
  return make_case(std::move(name), batch, q_heads, kv_heads, std::move(levels), suffix);
}

std::string k_tokens(int tokens) { return tokens % 1024 == 0 ? std::to_string(tokens / 1024) + "k" : std::to_string(tokens); }

// Joins name parts; appending avoids a false -Wrestrict warning of GCC 12 on chained operator+.
template <typename... Parts>
std::string name_of(const Parts&... parts) {
  std::string name;
  (name.append(parts), ...);
  return name;
}

std::vector<Preset> build_presets() {
  std::vector<Preset> all;

  Preset chunkattn{"chunkattn-t3", "ChunkAttention Table 3: batch 32, 32 heads (MHA), d 128, chunk 64; np tokens, ns shared", {}};
  for (int np : {1024, 2048, 4096}) {
    for (int ns : {0, np / 2, 3 * np / 4, np}) {
      chunkattn.cases.push_back(one_prompt(name_of("np", std::to_string(np), "_ns", std::to_string(ns)), 32, 32, 32, ns, np - ns));
    }
  }
  all.push_back(chunkattn);

  Preset hydragen{"hydragen-micro", "Hydragen microbenchmark: 8 q heads, 1 kv head, d 128; (batch, prefix), suffix", {}};
  for (const auto& [batch, prefix] : {std::pair{512, 1024}, std::pair{1024, 2048}, std::pair{2048, 4096}, std::pair{4096, 8192}}) {
    for (int suffix : {0, 64, 256, 512}) {
      hydragen.cases.push_back(one_prompt(name_of("b", std::to_string(batch), "_p", k_tokens(prefix), "_s", std::to_string(suffix)), batch,
                                          8, 1, prefix, suffix));
    }
  }
  all.push_back(hydragen);

  Preset cascade{"flashinfer-cascade", "FlashInfer cascade blog: MHA 32 x 128; prefix, batch, suffix", {}};
  for (int prefix : {1024, 8192, 32768}) {
    for (int batch : {32, 128, 256}) {
      for (int suffix : {0, 256}) {
        cascade.cases.push_back(one_prompt(name_of("p", k_tokens(prefix), "_b", std::to_string(batch), "_s", std::to_string(suffix)), batch,
                                           32, 32, prefix, suffix));
      }
    }
  }
  all.push_back(cascade);

  Preset llama{"gqa-llama3", "Llama-3 style GQA: 32 q / 8 kv heads, d 128; batch, prefix, suffix 512", {}};
  for (int batch : {64, 256}) {
    for (int prefix : {2048, 8192, 32768}) {
      llama.cases.push_back(one_prompt(name_of("b", std::to_string(batch), "_p", k_tokens(prefix)), batch, 32, 8, prefix, 512));
    }
  }
  all.push_back(llama);

  Preset tree{"tree", "Two- and three-level trees: system prompt, few-shot variants, samples with own tokens", {}};
  tree.cases.push_back(make_case("4k_x8x1k_x32_s256", 256, 32, 8, {{1, 4096}, {8, 1024}}, 256));
  tree.cases.push_back(make_case("4k_x256_s256", 256, 32, 8, {{1, 4096}}, 256));
  tree.cases.push_back(make_case("2k_x4x512_x4x256_s64", 128, 32, 32, {{1, 2048}, {4, 512}, {16, 256}}, 64));
  all.push_back(tree);

  Preset no_share{"no-share", "Nothing shared: every sequence reads only its own KV (the regression guard)", {}};
  no_share.cases.push_back(one_prompt("b32_mha_4k", 32, 32, 32, 0, 4096));
  no_share.cases.push_back(one_prompt("b32_mha_1k", 32, 32, 32, 0, 1024));
  no_share.cases.push_back(one_prompt("b64_gqa8_4k", 64, 32, 8, 0, 4096));
  no_share.cases.push_back(one_prompt("b512_gqa8x1_1k", 512, 8, 1, 0, 1024));
  all.push_back(no_share);

  Preset private_phase{"private", "The private (split-KV) phase: nothing shared, GQA groups 1-32, batch 1-128, d 128", {}};
  private_phase.cases.push_back(one_prompt("b1_g4_32k", 1, 32, 8, 0, 32768));
  private_phase.cases.push_back(one_prompt("b4_g4_16k", 4, 32, 8, 0, 16384));
  private_phase.cases.push_back(one_prompt("b16_g1_4k", 16, 32, 32, 0, 4096));
  private_phase.cases.push_back(one_prompt("b128_g4_2k", 128, 32, 8, 0, 2048));
  private_phase.cases.push_back(one_prompt("b64_g8_4k", 64, 32, 4, 0, 4096));
  private_phase.cases.push_back(one_prompt("b64_g16_8k", 64, 32, 2, 0, 8192));
  private_phase.cases.push_back(one_prompt("b64_g32_16k", 64, 32, 1, 0, 16384));
  all.push_back(private_phase);

  Preset hydragen_levels{"hydragen-levels", "Hydragen microbenchmark through the levels API (caller-owned contiguous KV)", {}};
  for (BenchCase c : hydragen.cases) {
    c.through_levels = true;
    hydragen_levels.cases.push_back(c);
  }
  all.push_back(hydragen_levels);

  Preset spec{"spec-decode", "Speculative decoding: 8 draft tokens per sequence (causal) on a 4K shared prompt; suffix includes them", {}};
  for (const auto& [heads, kv_heads, tag] : {std::tuple{32, 32, "mha"}, std::tuple{32, 8, "gqa"}}) {
    for (int batch : {64, 256}) {
      for (int suffix : {8, 264}) {
        BenchCase c = one_prompt(name_of("b", std::to_string(batch), "_", tag, "_p4k_s", std::to_string(suffix), "_q8"), batch, heads,
                                 kv_heads, 4096, suffix);
        c.queries = 8;
        c.through_levels = true;
        spec.cases.push_back(c);
      }
    }
  }
  all.push_back(spec);

  Preset small{"small", "Small batches and short contexts: launch and planning overheads", {}};
  small.cases.push_back(one_prompt("b1_gqa_512", 1, 32, 8, 0, 512));
  small.cases.push_back(one_prompt("b4_gqa_p512_s64", 4, 32, 8, 512, 64));
  small.cases.push_back(one_prompt("b8_mha_p256_s16", 8, 32, 32, 256, 16));
  small.cases.push_back(one_prompt("b8_gqa_p1k_s0", 8, 32, 8, 1024, 0));
  all.push_back(small);
  return all;
}

}  // namespace

std::int64_t BenchCase::shared_tokens() const {
  std::int64_t tokens = 0;
  for (const SharedLevel& level : levels) tokens += level.tokens;
  return tokens;
}

std::int64_t BenchCase::sequence_tokens() const { return shared_tokens() + suffix; }

std::int64_t BenchCase::unique_kv_tokens() const {
  std::int64_t tokens = static_cast<std::int64_t>(batch) * suffix;
  for (const SharedLevel& level : levels) tokens += static_cast<std::int64_t>(level.segments) * level.tokens;
  return tokens;
}

double BenchCase::flops() const {
  const double n = queries;
  const double seen = n * static_cast<double>(sequence_tokens() - queries) + n * (n + 1) / 2;
  return 4.0 * batch * q_heads * seen * head_dim;
}

std::vector<std::vector<std::int32_t>> BenchCase::sequences() const {
  std::int32_t next_id = 0;
  std::vector<std::int32_t> level_base;
  for (const SharedLevel& level : levels) {
    level_base.push_back(next_id);
    next_id += level.segments * level.tokens;
  }
  std::vector<std::vector<std::int32_t>> result(static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b) {
    std::vector<std::int32_t>& tokens = result[static_cast<std::size_t>(b)];
    for (std::size_t l = 0; l < levels.size(); ++l) {
      const int segment = b / (batch / levels[l].segments);
      for (int t = 0; t < levels[l].tokens; ++t) tokens.push_back(level_base[l] + segment * levels[l].tokens + t);
    }
    for (int t = 0; t < suffix; ++t) tokens.push_back(next_id++);
  }
  return result;
}

std::int64_t BenchCase::cache_chunks() const {
  std::int64_t chunks = static_cast<std::int64_t>(batch) * ((suffix + chunk - 1) / chunk + 1);
  for (const SharedLevel& level : levels) chunks += static_cast<std::int64_t>(level.segments) * ((level.tokens + chunk - 1) / chunk + 1);
  return chunks;
}

double BenchCase::unique_bytes() const {
  const double kv = 2.0 * 2.0 * kv_heads * head_dim * static_cast<double>(unique_kv_tokens());
  const double q_and_o = 2.0 * 2.0 * batch * queries * q_heads * head_dim;
  return kv + q_and_o;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = build_presets();
  return all;
}

const Preset& find_preset(std::string_view name) {
  std::string names;
  for (const Preset& preset : presets()) {
    if (preset.name == name) return preset;
    names += (names.empty() ? "" : ", ") + preset.name;
  }
  throw Error(ErrorCode::invalid_argument, "bench: unknown preset '" + std::string(name) + "'; presets: " + names);
}

std::string_view default_preset_name() { return "chunkattn-t3"; }

std::string cases_json(const Preset& preset) {
  std::string json = "{\"preset\": \"" + preset.name + "\", \"cases\": [";
  for (std::size_t i = 0; i < preset.cases.size(); ++i) {
    const BenchCase& c = preset.cases[i];
    json += std::string(i ? ",\n  " : "\n  ") + "{\"name\": \"" + c.name + "\", \"batch\": " + std::to_string(c.batch) +
            ", \"q_heads\": " + std::to_string(c.q_heads) + ", \"kv_heads\": " + std::to_string(c.kv_heads) +
            ", \"head_dim\": " + std::to_string(c.head_dim) + ", \"chunk\": " + std::to_string(c.chunk) + ", \"levels\": [";
    for (std::size_t l = 0; l < c.levels.size(); ++l) {
      json += std::string(l ? ", " : "") + "{\"segments\": " + std::to_string(c.levels[l].segments) +
              ", \"tokens\": " + std::to_string(c.levels[l].tokens) + "}";
    }
    json += "], \"suffix\": " + std::to_string(c.suffix) + ", \"queries\": " + std::to_string(c.queries) + "}";
  }
  return json + "\n]}\n";
}

}  // namespace chunktree::tools
