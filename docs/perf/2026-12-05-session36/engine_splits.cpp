// Engine-path (paged) splits before/after the greedy pricing: the spans of each bench case from
// make_plan over a CPU cache (the engine's shared pages are page-aligned segments of the same tree),
// priced with min_split 0 as PagedAttention does, on NHD pages (strided kv heads) and HND/HMD.
// Built (session 36) beside the old model: `git show af1dbc2:src/schedule/cost_model.{hpp,cpp}`,
// namespace renamed to chunktree::old_cost_model (old_cost_model_ns.hpp, old_ns.cpp), then
//   g++ -std=c++20 -I. -Isrc -Iinclude -I. -Ibuild/default engine_splits.cpp old_ns.cpp
//       build/default/tools/libchunktree_tools.a build/default/libchunktree.a -lcudart_static -ldl -lrt -lpthread
#include <cstdio>
#include <vector>
#include "chunktree/chunktree.hpp"
#include "schedule/cost_model.hpp"
#include "old_cost_model_ns.hpp"
#include "tools/bench/cases.hpp"
using namespace chunktree;
int main() {
  std::printf("preset,case,layout,old_split,new_split\n");
  for (const tools::Preset& preset : tools::presets()) {
    for (const tools::BenchCase& c : preset.cases) {
      CacheConfig config; config.num_kv_heads = 1; config.head_dim = 64; config.chunk_size = c.chunk; config.dtype = DType::bf16;
      config.device = Device::cpu; config.capacity_chunks = c.cache_chunks();
      PrefixCache cache(config);
      std::vector<SeqId> batch;
      for (const auto& tokens : c.sequences()) batch.push_back(cache.add(tokens).seq);
      std::vector<SpanSize> spans;
      PlanOptions options{2, 0, c.queries};
      options.choose_max_item_tokens = [&](std::span<const SpanSize> s) { spans.assign(s.begin(), s.end()); return std::int64_t{0}; };
      (void)make_plan(cache, batch, options);
      for (bool strided : {true, false}) {
        if (strided && c.kv_heads == 1) continue;
        const std::int64_t o = old_cost_model::cheapest_split(spans, old_cost_model::SplitShape{c.q_heads, c.kv_heads, c.head_dim, c.queries, 0, strided}, 132);
        const std::int64_t n = cost_model::cheapest_split(spans, cost_model::SplitShape{c.q_heads, c.kv_heads, c.head_dim, c.queries, 0, strided}, 132);
        std::printf("%s,%s,%s,%lld,%lld%s\n", preset.name.c_str(), c.name.c_str(), strided ? "NHD" : "HND/HMD", (long long)o, (long long)n, o != n ? ",CHANGED" : "");
      }
    }
  }
}
