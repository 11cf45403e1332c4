// Session 68's host harness (no GPU needed): a decode step's host work on the CUDA backend, with the
// CUDA runtime replaced by cudart_stub.cpp (memory is host memory, launches and driver calls do
// nothing), so that only chunktree's own host code is timed, as bench/decode_loop.py's
// chunktree-graph path calls it: append_batch, make_plan with the CUDA split policy into a reused
// plan, DevicePlan::update, then one layer's write_kv (the step's slots) and cuda::attend. B sequences
// forked from one prompt, a new round of them every 20 steps (the loop's steps are the first 19 of a
// sequence). It joins the session's two harnesses as they ran (git show 38cf5ab:.../update_perf.cpp
// and attend_perf.cpp): ab9_raw.txt came from the first (the same step without the layer), and
// attend_perf.txt and attend_count.txt from the second (the same loop, the layer's parts printed).
// Built from the repository root against a build's library (old and new: two libraries):
//   g++ -O2 -c -I/usr/local/cuda/include docs/perf/2026-12-08-session68/cudart_stub.cpp -o /tmp/cudart_stub.o
//   g++ -O2 -g -std=c++20 -Iinclude -Isrc -I/usr/local/cuda/include docs/perf/2026-12-08-session68/step_host_perf.cpp \
//       /tmp/cudart_stub.o build/default/libchunktree.a -ldl -lrt -lpthread -o /tmp/hb/update_perf_new
//   /tmp/hb/update_perf_new 64 4096 3000        # batch, prompt tokens, steps
// Built with -DCOUNT_CALLS, harness and stub both, it prints the runtime calls of one step's append and
// plan, update, write_kv and attend first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>
#include "chunktree/cuda_backend.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
using namespace chunktree;
#ifdef COUNT_CALLS
extern "C" void stub_reset();
extern "C" void stub_print(const char*, int);
#else
static void stub_reset() {}
static void stub_print(const char*, int) {}
#endif
using Clock = std::chrono::steady_clock;
static double us(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }
static double median(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }
int main(int argc, char** argv) {
  const int batch = argc > 1 ? atoi(argv[1]) : 64, prompt_len = argc > 2 ? atoi(argv[2]) : 4096, steps = argc > 3 ? atoi(argv[3]) : 2000;
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
  const auto rows = static_cast<std::int64_t>(seqs.size());
  std::vector<std::uint16_t> q(rows * 32 * 128), out(rows * 32 * 128), k(rows * 8 * 128), v(rows * 8 * 128);
  const ConstTensorView kv_k(k.data(), DType::bf16, Device::cuda, {rows, 8, 128});
  const ConstTensorView kv_v(v.data(), DType::bf16, Device::cuda, {rows, 8, 128});
  const ConstTensorView qv(q.data(), DType::bf16, Device::cuda, {rows, 32, 128});
  const TensorView ov{out.data(), DType::bf16, Device::cuda, {rows, 32, 128}};
  const char* parts[] = {"append_batch", "make_plan", "update", "write_kv", "attend"};
  std::vector<double> times[5];
  for (int i = 0; i < steps; ++i) {
    if (i % 20 == 19) {  // a new round of sequences, so that every step is one of the first 20
      for (SeqId s : seqs) cache.remove(s);
      seqs = cache.fork(root, batch);
    }
    const bool counted = i == steps - 2;
    Clock::time_point at[6];
    std::vector<Slot> slots;
    const auto part = [&](int p, auto&& work) {
      if (counted) stub_reset();
      at[p] = Clock::now();
      work();
      at[p + 1] = Clock::now();
      if (counted) stub_print(parts[p], 1);
    };
    part(0, [&] { slots = cache.append_batch(seqs, step); });
    part(1, [&] { make_plan(cache, seqs, cuda::plan_options(cache, params), plan); });
    part(2, [&] { device.update(cache, plan, nullptr); });
    part(3, [&] { cache.write_kv(0, slots, kv_k, kv_v, nullptr); });
    part(4, [&] { cuda::attend(cache, device, 0, qv, ov, {}, nullptr); });
    if (i % 20 >= 3 && i % 20 != 19) {
      for (int p = 0; p < 5; ++p) times[p].push_back(us(at[p], at[p + 1]));
    }
  }
  std::printf("b%d_p%d: append_batch %.2f us, make_plan (cuda policy) %.2f us, update %.2f us; write_kv %.2f us, attend %.2f us "
              "(a layer's host code; no driver time); items %zu\n",
              batch, prompt_len, median(times[0]), median(times[1]), median(times[2]), median(times[3]), median(times[4]), plan.items.size());
}
