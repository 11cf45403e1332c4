// plan_bench: host-bench's cases (tools/bench/host_bench.cpp: same cache, same appends), make_plan only,
// plus make_plan with the CUDA backend's split policy on the host (cost_model::cheapest_split with an
// H200's shape and 132 SMs: host-bench times that row only with a GPU). Each figure is the lowest
// median of rounds of 100 calls, to read this shared 2-core machine in its quiet moments.
// Build (from the repository root, after cmake --build --preset default):
//   g++ -O3 -DNDEBUG -std=c++20 -Iinclude -Isrc docs/perf/2026-12-02-planner/plan_bench.cpp -o plan_bench \
//       build/default/libchunktree.a /usr/local/cuda/lib/libcudart_static.a -ldl -lrt -lpthread
// Run: ./plan_bench [CASE|all] [plan|reused|split|shuffled N: N calls of one kind only, for a profiler]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>
#include "chunktree/plan.hpp"
#include "schedule/cost_model.hpp"
using namespace chunktree;
struct C { const char* name; int batch; int prompt; bool distinct; };
static double median(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }
// min over rounds of the round's median (rounds of 100 calls): the machine's quiet moments
template <class F> double timeit(int n, F f) {
  f();
  std::vector<double> rounds;
  for (int k = 0; k < n / 100; ++k) {
    std::vector<double> us;
    for (int i = 0; i < 100; ++i) { auto s = std::chrono::steady_clock::now(); f(); us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count()); }
    rounds.push_back(median(us));
  }
  return *std::min_element(rounds.begin(), rounds.end());
}
int main(int argc, char** argv) {
  const C cases[] = {{"b8_p2k", 8, 2048, false}, {"b64_p2k", 64, 2048, false}, {"b256_p2k", 256, 2048, false}, {"b1024_p2k", 1024, 2048, false}, {"b8_p1k_distinct", 8, 1024, true}};
  std::string only = argc > 1 ? argv[1] : "";
  std::string loop = argc > 2 ? argv[2] : "";  // "plan" | "split" | "shuffled": spin for perf
  int n = argc > 3 ? std::atoi(argv[3]) : 2000;
  for (const C& c : cases) {
    if (!only.empty() && only != "all" && only != c.name) continue;
    CacheConfig config; config.num_kv_heads = 1; config.head_dim = 64; config.dtype = DType::f32;
    const int repeats = 200;
    const std::int64_t chunks_per_seq = (2 * repeats + 4 + 63) / 64 + 1;
    config.capacity_chunks = c.batch * (chunks_per_seq + (c.distinct ? c.prompt / 64 : 0)) + c.prompt / 64;
    PrefixCache cache(config);
    std::vector<Token> prompt(c.prompt); std::iota(prompt.begin(), prompt.end(), 0);
    std::vector<SeqId> seqs;
    if (c.distinct) { for (int b = 0; b < c.batch; ++b) { prompt[0] = 1000000 + b; seqs.push_back(cache.add(prompt).seq); } }
    else seqs = cache.fork(cache.add(prompt).seq, c.batch);
    const std::vector<Token> step(seqs.size(), 7), one{7};
    for (int i = 0; i <= repeats; ++i) cache.append_batch(seqs, step);
    for (int i = 0; i <= repeats; ++i) for (SeqId s : seqs) cache.append(s, one);
    std::vector<SeqId> shuffled = seqs; std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(1));
    PlanOptions split;
    const cost_model::SplitShape shape{32, 1, 64, 1, 64};
    split.choose_max_item_tokens = [shape](std::span<const SpanSize> spans) { return cost_model::cheapest_split(spans, shape, 132); };
    Plan reused;
    if (loop == "plan") { for (int i = 0; i < n; ++i) make_plan(cache, seqs); continue; }
    if (loop == "reused") { for (int i = 0; i < n; ++i) make_plan(cache, seqs, PlanOptions{}, reused); continue; }
    if (loop == "split") { for (int i = 0; i < n; ++i) make_plan(cache, seqs, split); continue; }
    if (loop == "shuffled") { for (int i = 0; i < n; ++i) make_plan(cache, shuffled); continue; }
    const double a = timeit(n, [&] { make_plan(cache, seqs); });
    const double b = timeit(n, [&] { make_plan(cache, seqs, PlanOptions{}, reused); });
    const double s = timeit(n, [&] { make_plan(cache, shuffled); });
    const double w = timeit(n, [&] { make_plan(cache, seqs, split); });
    const Plan p = make_plan(cache, seqs, split);
    std::printf("%-16s plan %7.2f  reused %7.2f  shuffled %7.2f  with_split %7.2f   (pieces %zu items %zu split %lld)\n", c.name, a, b, s, w, p.pieces.size(), p.items.size(), (long long)p.max_item_tokens);
  }
}
