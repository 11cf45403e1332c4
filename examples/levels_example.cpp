// Worked example (docs/LEVELS.md): attention over KV an engine owns, in shared levels.
//
// Six sequences share a 100-token system prompt (level 0, a contiguous buffer); sequences 0-2
// and 3-5 each share a 40-token few-shot block (level 1, in a page pool of 16-token pages);
// each sequence has 5 own tokens, the last 2 of which are its 2 query tokens (causal). The
// result is checked against the fp64 reference over each query token's visible KV, and two of
// the states are then merged with the merge primitives.
#include <chunktree/chunktree.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace chunktree;

int main() {
  constexpr int kSeqs = 6, kQueries = 2, kQHeads = 8, kKvHeads = 2, kDim = 64;
  constexpr int kPrompt = 100, kFewShot = 40, kOwn = 5, kPage = 16;
  constexpr int kToken = kKvHeads * kDim;  // values per token
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto random = [&](std::size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
  };

  // Level 0: one contiguous [100, 2, 64] K and V, read by all six sequences.
  const std::vector<float> prompt_k = random(kPrompt * kToken), prompt_v = random(kPrompt * kToken);
  KvSegment prompt;
  prompt.length = kPrompt;
  prompt.k = ConstTensorView(prompt_k.data(), DType::f32, Device::cpu, {kPrompt, kKvHeads, kDim});
  prompt.v = ConstTensorView(prompt_v.data(), DType::f32, Device::cpu, {kPrompt, kKvHeads, kDim});

  // Level 1: two 40-token blocks in one page pool [8 pages, 16, 2, 64]; block j uses pages
  // {j, j+2, j+4} (any order of page ids works).
  const std::vector<float> pool_k = random(8 * kPage * kToken), pool_v = random(8 * kPage * kToken);
  auto few_shot = [&](int j) {
    KvSegment segment;
    segment.length = kFewShot;
    segment.pages = {j, j + 2, j + 4};
    segment.k = ConstTensorView(pool_k.data(), DType::f32, Device::cpu, {8, kPage, kKvHeads, kDim});
    segment.v = ConstTensorView(pool_v.data(), DType::f32, Device::cpu, {8, kPage, kKvHeads, kDim});
    return segment;
  };

  Levels levels;
  levels.queries_per_seq = kQueries;
  levels.levels = {{SharedSegment{prompt, 0, kSeqs}}, {SharedSegment{few_shot(0), 0, 3}, SharedSegment{few_shot(1), 3, 6}}};
  // Own KV: 5 tokens per sequence, all in one buffer [6 · 5, 2, 64].
  const std::vector<float> own_k = random(kSeqs * kOwn * kToken), own_v = random(kSeqs * kOwn * kToken);
  for (int s = 0; s < kSeqs; ++s) {
    KvSegment own;
    own.length = kOwn;
    own.k = ConstTensorView(own_k.data() + s * kOwn * kToken, DType::f32, Device::cpu, {kOwn, kKvHeads, kDim});
    own.v = ConstTensorView(own_v.data() + s * kOwn * kToken, DType::f32, Device::cpu, {kOwn, kKvHeads, kDim});
    levels.own.push_back(own);
  }

  // q, out: [6 sequences · 2 query tokens, 8, 64]; lse: [12, 8].
  const std::vector<float> q = random(kSeqs * kQueries * kQHeads * kDim);
  std::vector<float> out(q.size()), lse(kSeqs * kQueries * kQHeads);
  cpu::attend_levels(levels, ConstTensorView(q.data(), DType::f32, Device::cpu, {kSeqs * kQueries, kQHeads, kDim}),
                     TensorView{out.data(), DType::f32, Device::cpu, {kSeqs * kQueries, kQHeads, kDim}},
                     TensorView{lse.data(), DType::f32, Device::cpu, {kSeqs * kQueries, kQHeads}});

  // Check: query token i of sequence s sees the prompt, its few-shot block and own tokens 0..3+i.
  double worst = 0.0;
  for (int s = 0; s < kSeqs; ++s) {
    std::vector<float> k(prompt_k), v(prompt_v);
    const KvSegment block = few_shot(s / 3);
    for (int t = 0; t < kFewShot; ++t) {
      const std::size_t slot = static_cast<std::size_t>(block.pages[static_cast<std::size_t>(t / kPage)] * kPage + t % kPage) * kToken;
      k.insert(k.end(), pool_k.begin() + static_cast<std::ptrdiff_t>(slot), pool_k.begin() + static_cast<std::ptrdiff_t>(slot + kToken));
      v.insert(v.end(), pool_v.begin() + static_cast<std::ptrdiff_t>(slot), pool_v.begin() + static_cast<std::ptrdiff_t>(slot + kToken));
    }
    k.insert(k.end(), own_k.begin() + s * kOwn * kToken, own_k.begin() + (s + 1) * kOwn * kToken);
    v.insert(v.end(), own_v.begin() + s * kOwn * kToken, own_v.begin() + (s + 1) * kOwn * kToken);
    for (int i = 0; i < kQueries; ++i) {
      const int token = s * kQueries + i;
      const std::int64_t seen = kPrompt + kFewShot + kOwn - kQueries + i + 1;
      std::vector<double> expected(kQHeads * kDim), expected_lse(kQHeads);
      reference::attention(&q[static_cast<std::size_t>(token) * kQHeads * kDim], kQHeads, k.data(), v.data(), seen, kKvHeads, kDim,
                           1.0 / std::sqrt(kDim), expected.data(), expected_lse.data());
      for (int e = 0; e < kQHeads * kDim; ++e) worst = std::max(worst, std::abs(out[token * kQHeads * kDim + e] - expected[e]));
      for (int h = 0; h < kQHeads; ++h) worst = std::max(worst, std::abs(lse[token * kQHeads + h] - expected_lse[h]));
    }
  }
  std::printf("levels: 2 shared levels (contiguous and paged), 2 causal query tokens per sequence; max |diff| vs fp64 %.2e\n", worst);

  // Merge primitives: merging a state with the empty state (lse = -inf) changes nothing.
  std::vector<float> empty_o(kQHeads * kDim, 0.0f), empty_lse(kQHeads, -INFINITY);
  std::vector<float> merged_o(kQHeads * kDim), merged_lse(kQHeads);
  merge_state(ConstTensorView(out.data(), DType::f32, Device::cpu, {1, kQHeads, kDim}),
              ConstTensorView(lse.data(), DType::f32, Device::cpu, {1, kQHeads}),
              ConstTensorView(empty_o.data(), DType::f32, Device::cpu, {1, kQHeads, kDim}),
              ConstTensorView(empty_lse.data(), DType::f32, Device::cpu, {1, kQHeads}),
              TensorView{merged_o.data(), DType::f32, Device::cpu, {1, kQHeads, kDim}},
              TensorView{merged_lse.data(), DType::f32, Device::cpu, {1, kQHeads}});
  const bool unchanged = std::equal(merged_o.begin(), merged_o.end(), out.begin()) && std::equal(merged_lse.begin(), merged_lse.end(), lse.begin());
  std::printf("merge with an empty state: %s\n", unchanged ? "unchanged" : "CHANGED");
  return worst < 1e-4 && unchanged ? 0 : 1;
}
