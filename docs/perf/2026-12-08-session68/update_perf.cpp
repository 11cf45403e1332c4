// Session 68's host harness (no GPU needed): a decode step's host work on the CUDA backend, with the
// CUDA runtime replaced by cudart_stub.cpp (memory is host memory, launches and driver calls do
// nothing), so that only chunktree's own host code is timed: append_batch, make_plan with the CUDA
// split policy into a reused plan, and DevicePlan::update. B sequences forked from one prompt, a new
// round of them every 20 steps (bench/decode_loop.py's steps are the first 19 of a sequence).
// Built from the repository root against a build's library (old and new: two libraries):
//   g++ -O2 -c -I/usr/local/cuda/include docs/perf/2026-12-08-session68/cudart_stub.cpp -o /tmp/cudart_stub.o
//   g++ -O2 -g -std=c++20 -Iinclude -Isrc -I/usr/local/cuda/include docs/perf/2026-12-08-session68/update_perf.cpp \
//       /tmp/cudart_stub.o build/default/libchunktree.a -ldl -lrt -lpthread -o /tmp/update_perf_new
//   /tmp/update_perf_new 64 4096 3000        # batch, prompt tokens, steps
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>
#include "chunktree/cuda_backend.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
using namespace chunktree;
using Clock = std::chrono::steady_clock;
static double us(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }
static double median(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }
int main(int argc, char** argv) {
  const int batch = argc > 1 ? atoi(argv[1]) : 64, prompt_len = argc > 2 ? atoi(argv[2]) : 4096, steps = argc > 3 ? atoi(argv[3]) : 2000;
  const char* only = argc > 4 ? argv[4] : "";
  CacheConfig c; c.num_layers = 1; c.num_kv_heads = 8; c.head_dim = 128; c.chunk_size = 64; c.dtype = DType::bf16; c.device = Device::cuda;
  c.capacity_chunks = prompt_len / 64 + 2 * batch * 3;
  PrefixCache cache(c);
  std::vector<Token> prompt(prompt_len); std::iota(prompt.begin(), prompt.end(), 0);
  const SeqId root = cache.add(prompt).seq;
  std::vector<SeqId> seqs = cache.fork(root, batch);
  AttentionParams params; params.num_q_heads = 32;
  cuda::DevicePlan device(cache, params);
  Plan plan;
  std::vector<Token> step(seqs.size(), 7);
  std::vector<double> ta, tp, tu;
  for (int i = 0; i < steps; ++i) {
    if (i % 20 == 19) {  // a new round of sequences, so that every step is one of the first 20 (as bench/decode_loop.py's)
      for (SeqId s : seqs) cache.remove(s);
      seqs = cache.fork(root, batch);
    }
    auto a = Clock::now();
    cache.append_batch(seqs, step);
    auto b = Clock::now();
    make_plan(cache, seqs, cuda::plan_options(cache, params), plan);
    auto d = Clock::now();
    if (std::string(only) != "plan") device.update(cache, plan, nullptr);
    auto e = Clock::now();
    if (i % 20 >= 3 && i % 20 != 19) { ta.push_back(us(a, b)); tp.push_back(us(b, d)); tu.push_back(us(d, e)); }
  }
  std::printf("b%d_p%d: append_batch %.2f us, make_plan (cuda policy) %.2f us, update %.2f us; items %zu\n", batch, prompt_len,
              median(ta), median(tp), median(tu), plan.items.size());
}
