// Session 68: a decode layer's host code on the CUDA backend (stubbed runtime, built as update_perf.cpp says):
// write_kv of the step's K and V (slots from append_batch), then cuda::attend, one layer (attend_perf.txt).
// Built with -DCOUNT_CALLS, harness and stub both, it prints the runtime calls of one step's append and
// plan, update, and one layer's write_kv and attend instead (attend_count.txt).
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
#ifdef COUNT_CALLS  // with the stub built the same way: the runtime calls of one step's parts
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
  const std::size_t rows = seqs.size();
  std::vector<std::uint16_t> q(rows * 32 * 128), out(rows * 32 * 128), k(rows * 8 * 128), v(rows * 8 * 128);
  std::vector<double> tw, ta;
  for (int i = 0; i < steps; ++i) {
    if (i % 20 == 19) {
      for (SeqId s : seqs) cache.remove(s);
      seqs = cache.fork(root, batch);
    }
    const bool counted = i == steps - 2;
    if (counted) stub_reset();
    const std::vector<Slot> slots = cache.append_batch(seqs, step);
    make_plan(cache, seqs, cuda::plan_options(cache, params), plan);
    if (counted) { stub_print("append+plan", 1); stub_reset(); }
    device.update(cache, plan, nullptr);
    if (counted) { stub_print("update", 1); stub_reset(); }
    const ConstTensorView kv_k(k.data(), DType::bf16, Device::cuda, {static_cast<std::int64_t>(rows), 8, 128});
    const ConstTensorView kv_v(v.data(), DType::bf16, Device::cuda, {static_cast<std::int64_t>(rows), 8, 128});
    const ConstTensorView qv(q.data(), DType::bf16, Device::cuda, {static_cast<std::int64_t>(rows), 32, 128});
    const TensorView ov{out.data(), DType::bf16, Device::cuda, {static_cast<std::int64_t>(rows), 32, 128}};
    auto a = Clock::now();
    cache.write_kv(0, slots, kv_k, kv_v, nullptr);
    auto b = Clock::now();
    if (counted) { stub_print("write_kv", 1); stub_reset(); }
    cuda::attend(cache, device, 0, qv, ov, {}, nullptr);
    auto d = Clock::now();
    if (counted) { stub_print("attend", 1); stub_reset(); }
    if (i % 20 >= 3 && i % 20 != 19) { tw.push_back(us(a, b)); ta.push_back(us(b, d)); }
  }
  std::printf("b%d_p%d: write_kv %.2f us, attend %.2f us (a layer's host code; no driver time)\n", batch, prompt_len, median(tw), median(ta));
}
