// Session 35: from_plan's time on this machine's CPU (KERNEL_NOTES, session 35). Built against build/default:
//   g++ -std=c++20 -O2 -Iinclude -Isrc from_plan_bench.cpp build/default/libchunktree.a /usr/local/cuda/lib/libcudart_static.a \
//       /usr/local/cuda/lib/libculibos.a -ldl -lrt -lpthread
// (the 'before' figure links an object of src/schedule/work.cpp as of ad80b72's parent (before the plan checks), compiled -O3, ahead of the library).
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
#include "schedule/work.hpp"
using namespace chunktree;
int main() {
  CacheConfig c; c.num_kv_heads = 8; c.head_dim = 128; c.chunk_size = 16; c.capacity_chunks = 1 << 16; c.dtype = DType::bf16;
  PrefixCache cache(c);
  std::vector<Token> prompt(4096); for (int i = 0; i < 4096; ++i) prompt[i] = i;
  const SeqId root = cache.add(prompt).seq;
  std::vector<SeqId> batch = cache.fork(root, 1024);
  for (SeqId s : batch) { std::vector<Token> own(64, 5); cache.append(s, own); }
  PlanOptions o; o.max_item_tokens = 512;
  Plan plan = make_plan(cache, batch, o);
  work::Work w;
  std::vector<double> us;
  for (int r = 0; r < 2000; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    work::from_plan(cache, plan, w);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("rows %u items %zu pieces %zu states %u: from_plan median %.2f us p10 %.2f\n", plan.num_rows(), plan.items.size(), plan.pieces.size(), plan.num_states, us[us.size()/2], us[us.size()/10]);
}
