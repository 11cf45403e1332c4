#include <cstdio>
#include <vector>
#include "schedule/cost_model.hpp"
using namespace chunktree;
struct Row { const char* name; cost_model::SplitShape shape; std::vector<SpanSize> spans; };
int main() {
  auto priv = [](std::vector<SpanSize> v, int n, std::int64_t t) { for (int i = 0; i < n; ++i) v.push_back({1, t}); return v; };
  std::vector<Row> rows = {
    {"np1024_ns768", {32, 32, 128, 1, 64}, priv({{32, 768}}, 32, 256)},
    {"p8k_b32_s256 noshare", {32, 32, 128, 1, 64}, priv({}, 32, 8448)},
    {"p32k_b32_s256 noshare", {32, 32, 128, 1, 64}, priv({}, 32, 33024)},
    {"p32k_b128_s256 noshare", {32, 32, 128, 1, 64}, priv({}, 128, 33024)},
    {"b64_p8k noshare", {32, 8, 128, 1, 64}, priv({}, 64, 8704)},
    {"b256_p32k noshare", {32, 8, 128, 1, 64}, priv({}, 256, 33280)},
  };
  for (auto& r : rows) {
    std::printf("%s:", r.name);
    for (std::int64_t s : {0L, 256L, 512L, 1024L, 2048L, 4096L, 8192L, 16384L}) std::printf(" %ld=%.1f", s, cost_model::estimated_micros(r.spans, s, r.shape, 132));
    std::printf("  choice %ld\n", cost_model::cheapest_split(r.spans, r.shape, 132));
  }
}
