// Worked example (docs/LEVELS.md): speculative decoding through the prefix cache.
//
// Four sequences share a 300-token prompt; each appends 4 draft tokens, and one attention call
// scores all 4 drafts of every sequence at once (queries_per_seq = 4, causal among the drafts).
// Checked against the fp64 reference on each draft's prefix.
#include <chunktree/chunktree.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace chunktree;

int main() {
  constexpr int kSeqs = 4, kDrafts = 4, kQHeads = 4, kKvHeads = 1, kDim = 128, kPrompt = 300;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  CacheConfig config;
  config.num_kv_heads = kKvHeads;
  config.head_dim = kDim;
  config.chunk_size = 32;
  config.dtype = DType::f32;
  config.capacity_chunks = 128;
  PrefixCache cache(config);

  // The KV of a token, made up here from its position and sequence (a model would compute it).
  std::vector<std::vector<float>> k_of(kSeqs), v_of(kSeqs);  // [tokens, kv_heads · dim] per sequence
  auto write = [&](int s, const std::vector<Slot>& slots, std::size_t first) {
    std::vector<float> k, v;
    for (std::size_t t = first; t < first + slots.size(); ++t) {
      k.insert(k.end(), k_of[s].begin() + static_cast<std::ptrdiff_t>(t * kDim), k_of[s].begin() + static_cast<std::ptrdiff_t>((t + 1) * kDim));
      v.insert(v.end(), v_of[s].begin() + static_cast<std::ptrdiff_t>(t * kDim), v_of[s].begin() + static_cast<std::ptrdiff_t>((t + 1) * kDim));
    }
    const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), kKvHeads, kDim};
    cache.write_kv(0, slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape), ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
  };
  std::vector<float> prompt_k(kPrompt * kDim), prompt_v(kPrompt * kDim);
  for (float& x : prompt_k) x = normal(rng);
  for (float& x : prompt_v) x = normal(rng);
  std::vector<Token> prompt(kPrompt);
  for (int t = 0; t < kPrompt; ++t) prompt[static_cast<std::size_t>(t)] = t;

  std::vector<SeqId> batch;
  for (int s = 0; s < kSeqs; ++s) {
    k_of[s] = prompt_k;
    v_of[s] = prompt_v;
    for (int t = 0; t < kDrafts * kDim; ++t) {
      k_of[s].push_back(normal(rng));
      v_of[s].push_back(normal(rng));
    }
    const AddResult added = cache.add(prompt);  // the first add stores the prompt; the others share it
    write(s, added.slots, static_cast<std::size_t>(added.cached_tokens));
    std::vector<Token> drafts;
    for (int d = 0; d < kDrafts; ++d) drafts.push_back(1000 + 10 * s + d);
    write(s, cache.append(added.seq, drafts), kPrompt);
    batch.push_back(added.seq);
  }

  PlanOptions options;
  options.queries_per_seq = kDrafts;  // the last 4 tokens of every sequence are queries
  const Plan plan = make_plan(cache, batch, options);
  std::vector<float> q(kSeqs * kDrafts * kQHeads * kDim), out(q.size()), lse(kSeqs * kDrafts * kQHeads);
  for (float& x : q) x = normal(rng);
  AttentionParams params;
  params.num_q_heads = kQHeads;
  cpu::attend(cache, plan, 0, ConstTensorView(q.data(), DType::f32, Device::cpu, {kSeqs * kDrafts, kQHeads, kDim}),
              TensorView{out.data(), DType::f32, Device::cpu, {kSeqs * kDrafts, kQHeads, kDim}},
              TensorView{lse.data(), DType::f32, Device::cpu, {kSeqs * kDrafts, kQHeads}}, params);

  double worst = 0.0;
  for (int s = 0; s < kSeqs; ++s) {
    for (int d = 0; d < kDrafts; ++d) {
      const int token = s * kDrafts + d;
      std::vector<double> expected(kQHeads * kDim), expected_lse(kQHeads);
      reference::attention(&q[static_cast<std::size_t>(token) * kQHeads * kDim], kQHeads, k_of[s].data(), v_of[s].data(), kPrompt + d + 1,
                           kKvHeads, kDim, 1.0 / std::sqrt(kDim), expected.data(), expected_lse.data());
      for (int e = 0; e < kQHeads * kDim; ++e) worst = std::max(worst, std::abs(out[token * kQHeads * kDim + e] - expected[e]));
    }
  }
  std::printf("speculative decode: %d sequences x %d drafts, %zu items (%u shared); max |diff| vs fp64 %.2e\n", kSeqs, kDrafts,
              plan.items.size(), plan.num_shared_items, worst);
  return worst < 1e-4 ? 0 : 1;
}
