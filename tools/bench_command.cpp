// `chunktree bench`: the default benchmark. One representative shape — a batch decoding on a
// shared prompt — run with prefix sharing and without, on the backend this machine has.
// (The preset harness with peers and floors comes with the benchmark issue.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "backend.hpp"
#include "chunktree/cpu_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/plan.hpp"
#include "commands.hpp"
#include "random.hpp"
#include "options.hpp"

namespace chunktree::tools {
namespace {

struct BenchShape {
  int batch = 32;
  int q_heads = 32;
  int kv_heads = 32;
  int head_dim = 128;
  int prefix = 1024;  // tokens every sequence shares
  int suffix = 64;    // each sequence's own tokens
  int chunk = 64;
  int repeats = 5;
  int threads = 0;
};

void print_help() {
  std::printf(
      "usage: chunktree bench [--batch N] [--heads N] [--kv-heads N] [--dim D] [--prefix T] [--suffix T]\n"
      "                       [--chunk C] [--repeats R] [--threads N]\n"
      "Times attention for N sequences that share a T-token prefix, with the prefix shared and\n"
      "with every sequence read separately. Defaults: batch 32, 32/32 heads, d 128, prefix 1024,\n"
      "suffix 64, chunk 64.\n");
}

BenchShape parse(Args args) {
  BenchShape shape;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") {
      print_help();
      std::exit(0);
    }
    const int value = static_cast<int>(integer_option(flag, option_value("bench", args, i), 0, 1 << 24));
    if (flag == "--batch") shape.batch = value;
    else if (flag == "--heads") shape.q_heads = value;
    else if (flag == "--kv-heads") shape.kv_heads = value;
    else if (flag == "--dim") shape.head_dim = value;
    else if (flag == "--prefix") shape.prefix = value;
    else if (flag == "--suffix") shape.suffix = value;
    else if (flag == "--chunk") shape.chunk = value;
    else if (flag == "--repeats") shape.repeats = value;
    else if (flag == "--threads") shape.threads = value;
    else throw Error(ErrorCode::invalid_argument, "bench: unknown option " + std::string(flag) + " (see --help)");
  }
  if (shape.batch < 1 || shape.prefix < 0 || shape.suffix < 0 || shape.prefix + shape.suffix < 1 || shape.repeats < 1) {
    throw Error(ErrorCode::invalid_argument, "bench: batch and repeats must be ≥ 1 and every sequence needs a token");
  }
  return shape;
}

// Fills the given slots with random bf16-representable K and V.
void write_random_kv(PrefixCache& cache, const std::vector<Slot>& slots, Random& random) {
  const CacheConfig& config = cache.config();
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), config.num_kv_heads, config.head_dim};
  std::vector<float> k(slots.size() * static_cast<std::size_t>(config.num_kv_heads * config.head_dim));
  std::vector<float> v(k.size());
  for (float& x : k) x = static_cast<float>(random.normal());
  for (float& x : v) x = static_cast<float>(random.normal());
  cache.write_kv(0, slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                 ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
}

double median_ms(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int bench_command(Args args) {
  const BenchShape shape = parse(args);
  const Backend backend = select_backend("auto");
  const bool gpu_visible = !cuda_devices().empty();
  std::printf("backend: %s (%s)\n", std::string(backend_name(backend)).c_str(),
              gpu_visible ? "a GPU is visible, but this build has no CUDA attention backend yet"
                          : "no GPU visible: running the CPU backend");

  CacheConfig config;
  config.num_kv_heads = shape.kv_heads;
  config.head_dim = shape.head_dim;
  config.chunk_size = shape.chunk;
  config.dtype = DType::bf16;
  const std::int64_t per_sequence_chunks = (shape.suffix + shape.chunk - 1) / shape.chunk + 1;
  config.capacity_chunks = (shape.prefix + shape.chunk - 1) / shape.chunk + shape.batch * per_sequence_chunks;
  PrefixCache cache(config);

  Random random(seed_from("chunktree bench"));
  std::vector<Token> prompt(static_cast<std::size_t>(shape.prefix));
  std::iota(prompt.begin(), prompt.end(), 0);
  std::vector<SeqId> batch;
  for (int s = 0; s < shape.batch; ++s) {
    std::vector<Token> tokens = prompt;
    for (int t = 0; t < shape.suffix; ++t) tokens.push_back(1'000'000 + s * shape.suffix + t);
    const AddResult added = cache.add(tokens);
    if (!added.slots.empty()) write_random_kv(cache, added.slots, random);
    batch.push_back(added.seq);
  }

  const auto b = static_cast<std::int64_t>(batch.size());
  std::vector<float> q(static_cast<std::size_t>(b * shape.q_heads * shape.head_dim));
  for (float& x : q) x = round_to(DType::bf16, static_cast<float>(random.normal()));
  std::vector<float> out(q.size());
  const ConstTensorView q_view(q.data(), DType::f32, Device::cpu, {b, shape.q_heads, shape.head_dim});
  const TensorView out_view{out.data(), DType::f32, Device::cpu, {b, shape.q_heads, shape.head_dim}};
  AttentionParams params;
  params.num_q_heads = shape.q_heads;
  params.num_threads = shape.threads;

  const CacheStats stats = cache.stats();
  const double flops = 4.0 * static_cast<double>(b) * shape.q_heads * (shape.prefix + shape.suffix) * shape.head_dim;
  std::printf("shape: batch %d, %d q heads / %d kv heads, d %d, prefix %d shared + suffix %d own, chunk %d, bf16 KV\n",
              shape.batch, shape.q_heads, shape.kv_heads, shape.head_dim, shape.prefix, shape.suffix, shape.chunk);
  std::printf("cache: %lld tokens stored for %lld tokens of sequences (%.1fx less KV memory), %lld chunks\n",
              static_cast<long long>(stats.tokens_stored), static_cast<long long>(stats.tokens_without_sharing),
              static_cast<double>(stats.tokens_without_sharing) / static_cast<double>(stats.tokens_stored),
              static_cast<long long>(stats.chunks_in_use));
  std::printf("%-22s %12s %12s %10s\n", "mode", "median ms", "GFLOP/s", "items");

  PlanOptions no_sharing;
  no_sharing.min_shared_rows = shape.batch + 1;  // every span read privately
  for (const auto& [mode, options] : {std::pair<const char*, PlanOptions>{"prefix shared", PlanOptions{}},
                                      std::pair<const char*, PlanOptions>{"no sharing", no_sharing}}) {
    const Plan plan = make_plan(cache, batch, options);
    cpu::attend(cache, plan, 0, q_view, out_view, {}, params);  // warm-up
    std::vector<double> times;
    for (int r = 0; r < shape.repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      cpu::attend(cache, plan, 0, q_view, out_view, {}, params);
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    const double ms = median_ms(times);
    std::printf("%-22s %12.3f %12.2f %10zu\n", mode, ms, flops / (ms * 1e6), plan.items.size());
  }
  std::printf("(CPU timings, median of %d runs; GPU numbers come with the CUDA backend)\n", shape.repeats);
  return 0;
}

}  // namespace chunktree::tools
