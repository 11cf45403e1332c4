// make_plan + work::from_plan into fresh arrays against into reused ones (host only), B sequences
// forked from one 2048-token prompt with 20 own tokens each, median of 300 calls. Built and run on
// the development machine from the repository root after `cmake --build --preset default`:
//   g++ -O2 -std=c++20 -Iinclude -Isrc plan_reuse_bench.cpp -Lbuild/default -lchunktree \
//       -L/usr/local/cuda/lib64 -lcudart_static -ldl -lrt -lpthread -o plan_reuse_bench && ./plan_reuse_bench
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
#include "work/work.hpp"
using namespace chunktree;
template <class F> double median_us(F f, int n = 300) {
  std::vector<double> t;
  for (int r = 0; r < n; ++r) { auto a = std::chrono::steady_clock::now(); f(); t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count()); }
  std::sort(t.begin(), t.end()); return t[t.size() / 2];
}
int main() {
  for (int batch : {256, 1024}) {
    CacheConfig c; c.num_kv_heads = 1; c.head_dim = 64; c.chunk_size = 64; c.capacity_chunks = 16384; c.dtype = DType::f32;
    PrefixCache cache(c);
    std::vector<Token> prompt(2048); for (int i = 0; i < 2048; ++i) prompt[i] = i;
    const SeqId root = cache.add(prompt).seq;
    std::vector<SeqId> seqs = cache.fork(root, batch - 1); seqs.push_back(root);
    for (int step = 0; step < 20; ++step) for (std::size_t i = 0; i < seqs.size(); ++i) cache.append(seqs[i], std::vector<Token>{Token(5000 + i)});
    for (std::int64_t split : {0, 256}) {
      PlanOptions o; o.max_item_tokens = split;
      Plan reused; work::Work w;
      const double fresh = median_us([&] { Plan q = make_plan(cache, seqs, o); work::Work x = work::from_plan(cache, q); });
      const double reuse = median_us([&] { make_plan(cache, seqs, o, reused); work::from_plan(cache, reused, w); });
      std::printf("B=%d split %ld: make_plan + from_plan fresh %.1f us, reused %.1f us\n", batch, (long)split, fresh, reuse);
    }
  }
}
