#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
#include <random>
#include <cstdlib>
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
using namespace chunktree;
int main(int argc, char** argv) {
  CacheConfig c; c.num_kv_heads = 1; c.head_dim = 64; c.chunk_size = 64; c.capacity_chunks = 8192; c.dtype = DType::f32;
  PrefixCache cache(c);
  std::vector<Token> prompt(2048); for (int i = 0; i < 2048; ++i) prompt[i] = i;
  const SeqId root = cache.add(prompt).seq;
  std::vector<SeqId> seqs = cache.fork(root, 1023); seqs.push_back(root);
  for (int step = 0; step < 3; ++step) for (std::size_t i = 0; i < seqs.size(); ++i) cache.append(seqs[i], std::vector<Token>{Token(5000 + i)});
  if (argc > 1) std::shuffle(seqs.begin(), seqs.end(), std::mt19937(1));
  std::vector<double> t;
  for (int r = 0; r < (getenv("N") ? atoi(getenv("N")) : 200); ++r) {
    auto a = std::chrono::steady_clock::now();
    Plan p = make_plan(cache, seqs);
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  std::vector<Token> one(1024, 7);
  std::vector<double> ta, tb;
  for (int r = 0; r < 50; ++r) {
    auto a = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < seqs.size(); ++i) cache.append(seqs[i], std::vector<Token>{Token(9000 + i)});
    auto b = std::chrono::steady_clock::now();
    cache.append_batch(seqs, one);
    auto d = std::chrono::steady_clock::now();
    ta.push_back(std::chrono::duration<double, std::micro>(b - a).count());
    tb.push_back(std::chrono::duration<double, std::micro>(d - b).count());
  }
  std::sort(ta.begin(), ta.end()); std::sort(tb.begin(), tb.end());
  std::printf("make_plan B=1024 median %.1f us (p10 %.1f)\nappend x1024 %.1f us, append_batch %.1f us\n", t[t.size()/2], t[t.size()/10], ta[25], tb[25]);
}
