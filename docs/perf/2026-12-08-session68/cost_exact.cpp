// Session 68's exactness check of the cost model: its answers (cheapest_split, estimated_micros,
// wgmma_sms) on 20,000 random inputs, hashed bit for bit, to compare two builds. Built from the
// repository root against each build's library:
//   g++ -O2 -std=c++20 -Iinclude -Isrc docs/perf/2026-12-08-session68/cost_exact.cpp build/default/libchunktree.a -o /tmp/cost_exact
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "schedule/cost_model.hpp"
using namespace chunktree;
int main() {
  std::mt19937_64 rng(12345);
  unsigned long long hash = 1469598103934665603ull;
  const auto mix = [&](const void* p, std::size_t n) { auto* b = static_cast<const unsigned char*>(p); for (std::size_t i = 0; i < n; ++i) { hash ^= b[i]; hash *= 1099511628211ull; } };
  for (int trial = 0; trial < 20000; ++trial) {
    const int nspans = 1 + rng() % (trial % 10 == 0 ? 2000 : 80);
    std::vector<SpanSize> spans;
    const int kinds = 1 + rng() % 6;
    std::vector<SpanSize> palette;
    for (int k = 0; k < kinds; ++k) palette.push_back(SpanSize{static_cast<std::uint32_t>(1 + (rng() % 3 == 0 ? rng() % 512 : rng() % 4)), static_cast<std::int64_t>(rng() % 3 == 0 ? rng() % 33000 : rng() % 300)});
    for (int s = 0; s < nspans; ++s) spans.push_back(palette[rng() % kinds]);
    const int dims[] = {64, 128, 256};
    cost_model::SplitShape shape{};
    shape.kv_heads = 1 << (rng() % 4);
    shape.q_heads = shape.kv_heads * (1 << (rng() % 4));
    shape.head_dim = dims[rng() % 3];
    shape.queries = 1 + rng() % 4;
    shape.min_split = (rng() % 2) ? 64 : 16;
    shape.strided_kv_heads = rng() % 2;
    const int sms = (rng() % 2) ? 132 : 78;
    const std::int64_t split = cost_model::cheapest_split(spans, shape, sms);
    const double est = cost_model::estimated_micros(spans, split, shape, sms);
    mix(&split, sizeof split); mix(&est, sizeof est);
    std::vector<std::int64_t> wg, ms; std::vector<std::int32_t> rows;
    const int nw = rng() % 300, nm = rng() % 600;
    const int wl = 1 + rng() % 12;
    for (int i = 0; i < nw; ++i) wg.push_back(64 * (1 + rng() % wl) * (1 + rng() % 8));
    for (int i = 0; i < nm; ++i) { ms.push_back(1 + rng() % 5000); rows.push_back(1 + rng() % 64); }
    const double bw[] = {0.0, 3.35e6, 4.9e6, 8.0e6};
    const int k = cost_model::wgmma_sms(wg, ms, rows, dims[rng() % 3], sms, 1 + rng() % 2, bw[rng() % 4]);
    mix(&k, sizeof k);
    if (trial % 5000 == 0) std::printf("trial %d split %lld est %.17g k %d\n", trial, (long long)split, est, k);
  }
  std::printf("hash %016llx\n", hash);
}
