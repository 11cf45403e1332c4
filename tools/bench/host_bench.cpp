// `chunktree host-bench`: what a decode step costs on the host, apart from the kernels: appending
// one token to every sequence (one append_batch, and one append per sequence), planning (in the
// batch's depth-first order and shuffled, and with the CUDA backend's split policy), and on a
// GPU the plan's upload (building a cuda::DevicePlan); and the paged front end's plan of the same
// batch as an engine's page table. Medians of many calls on the steady clock.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/gpu_measure.hpp"
#include "bench/run_stats.hpp"
#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/paged.hpp"
#include "chunktree/plan.hpp"
#include "chunktree_commit.hpp"
#include "commands.hpp"
#include "harness/backend.hpp"
#include "harness/text_arrays.hpp"
#include "options.hpp"

namespace chunktree::tools {
namespace {

constexpr const char* kUsage =
    "usage: chunktree host-bench [--backend cpu|cuda|auto] [--repeats N] [--case NAME] [--csv FILE]\n"
    "Times a decode step's host work for B sequences on one 2048-token prompt (B = 8, 64, 256, 1024, 4096) and\n"
    "for 8 sequences on 1024-token prompts of their own: append_batch of one token each, B appends,\n"
    "make_plan in batch order, into a reused plan and shuffled, make_plan with the CUDA backend's split policy and the\n"
    "plan's upload (cuda::DevicePlan) on a GPU; then the same batch as a page table (pages of 16 tokens, the\n"
    "prompt's shared, one page of each sequence's own; 32 q / 8 kv heads, d 128) planned by cpu::PagedAttention\n"
    "(the schedule alone) and on a GPU by cuda::PagedAttention (with its upload). Medians and p10 in us of\n"
    "--repeats calls (default 200).\n"
    "--case NAME runs only the case of that name (the first column: b8_p2k, b1024_p2k, ...).\n";

struct HostCase {
  const char* name;
  int batch;
  int prompt;
  bool distinct;  // every sequence its own prompt
};
constexpr HostCase kCases[] = {
    {"b8_p2k", 8, 2048, false}, {"b64_p2k", 64, 2048, false}, {"b256_p2k", 256, 2048, false},
    {"b1024_p2k", 1024, 2048, false}, {"b4096_p2k", 4096, 2048, false}, {"b8_p1k_distinct", 8, 1024, true},
};

struct Sample {
  double median_us;
  double p10_us;
};

// Median and p10 of `repeats` calls of `call` (after one unmeasured call).
Sample time_calls(int repeats, const std::function<void()>& call) {
  call();
  std::vector<double> us;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    call();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return Sample{percentile(us, 0.5), percentile(us, 0.1)};
}

}  // namespace

int host_bench_command(Args args) {
  std::string_view backend_choice = "auto";
  int repeats = 200;
  std::string csv;
  std::string_view only_case;  // empty: every case
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (args[i] == "--backend") {
      backend_choice = option_value("host-bench", args, i);
    } else if (args[i] == "--repeats") {
      repeats = static_cast<int>(integer_option("--repeats", option_value("host-bench", args, i), 1, 100000));
    } else if (args[i] == "--case") {
      only_case = option_value("host-bench", args, i);
      if (std::none_of(std::begin(kCases), std::end(kCases), [&](const HostCase& c) { return c.name == only_case; })) {
        throw Error(ErrorCode::invalid_argument, "host-bench: unknown case " + std::string(only_case) + "\n" + kUsage);
      }
    } else if (args[i] == "--csv") {
      csv = option_value("host-bench", args, i);
    } else {
      throw Error(ErrorCode::invalid_argument, "host-bench: unknown option " + std::string(args[i]) + "\n" + kUsage);
    }
  }
  const harness::Backend backend = select_backend(backend_choice);
  if (!csv.empty()) harness::expect_writable(csv);  // refused now, not after the run
  const std::string card = backend == harness::Backend::cuda ? card_info().name : "cpu";
  const std::string date = utc_date();
  std::printf("host-bench: %s, %s, commit %s (host work only; the kernels are not run)\n", card.c_str(), date.c_str(), CHUNKTREE_COMMIT);
  std::string rows = "case,what,batch,prompt_tokens,median_us,p10_us,card,date,commit\n";
  for (const HostCase& c : kCases) {
    if (!only_case.empty() && c.name != only_case) continue;
    // One kv head of d 64: the host work does not depend on the pool's size, the allocation does.
    CacheConfig config;
    config.num_kv_heads = 1;
    config.head_dim = 64;
    config.dtype = backend == harness::Backend::cuda ? DType::bf16 : DType::f32;
    config.device = harness::backend_device(backend);
    const std::int64_t chunks_per_seq = (2 * repeats + 4 + 63) / 64 + 2;  // the appends below (and up to 63 more), 64-token chunks
    config.capacity_chunks = c.batch * (chunks_per_seq + (c.distinct ? c.prompt / 64 : 0)) + c.prompt / 64;
    PrefixCache cache(config);
    std::vector<Token> prompt(static_cast<std::size_t>(c.prompt));
    std::iota(prompt.begin(), prompt.end(), 0);
    std::vector<SeqId> seqs;
    if (c.distinct) {
      for (int b = 0; b < c.batch; ++b) {
        prompt[0] = 1'000'000 + b;
        seqs.push_back(cache.add(prompt).seq);
      }
    } else {
      seqs = cache.fork(cache.add(prompt).seq, c.batch);
    }
    const std::vector<Token> step_tokens(seqs.size(), 7);
    const std::vector<Token> one{7};
    std::vector<std::pair<std::string, Sample>> samples;
    samples.emplace_back("append_batch", time_calls(repeats, [&] { cache.append_batch(seqs, step_tokens); }));
    samples.emplace_back("append_each", time_calls(repeats, [&] {
                           for (const SeqId seq : seqs) cache.append(seq, one);
                         }));
    samples.emplace_back("make_plan", time_calls(repeats, [&] { make_plan(cache, seqs); }));
    Plan reused;  // a decode loop's plan, planned into every step (its memory reused)
    samples.emplace_back("make_plan_reused", time_calls(repeats, [&] { make_plan(cache, seqs, PlanOptions{}, reused); }));
    std::vector<SeqId> shuffled = seqs;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(1));
    samples.emplace_back("make_plan_shuffled", time_calls(repeats, [&] { make_plan(cache, shuffled); }));
    if (backend == harness::Backend::cuda) {
      const AttentionParams params{32};
      samples.emplace_back("make_plan_with_split", time_calls(repeats, [&] {
                             make_plan(cache, seqs, cuda::plan_options(cache, params));
                           }));
      const Plan plan = make_plan(cache, seqs, cuda::plan_options(cache, params));
      samples.emplace_back("device_plan_upload", time_calls(repeats, [&] { cuda::DevicePlan device_plan(cache, plan, params); }));
      // A serving batch: the sequences' own lengths differ (1 to 63 tokens more each, no two
      // neighbours alike), so that the split search prices every private span on its own.
      for (std::size_t b = 0; b < seqs.size(); ++b) cache.append(seqs[b], std::vector<Token>(1 + (b * 37) % 63, 7));
      samples.emplace_back("make_plan_with_split_uneven", time_calls(repeats, [&] {
                             make_plan(cache, seqs, cuda::plan_options(cache, params));
                           }));
    }
    // The same batch as an engine's page table: the prompt's pages (shared, or each sequence's own),
    // then one page of each sequence's own tokens.
    constexpr int kPage = 16;
    const int prompt_pages = c.prompt / kPage;
    std::vector<std::int32_t> indptr{0};
    std::vector<std::int32_t> indices;
    std::vector<std::int32_t> last_page_len;
    for (int b = 0; b < c.batch; ++b) {
      const int first = c.distinct ? b * (prompt_pages + 1) : 0;
      for (int p = 0; p < prompt_pages; ++p) indices.push_back(first + p);
      indices.push_back(c.distinct ? first + prompt_pages : prompt_pages + b);
      indptr.push_back(static_cast<std::int32_t>(indices.size()));
      last_page_len.push_back(5);
    }
    const PageTableView table{indptr, indices, last_page_len, {}};
    const PagedShape paged_shape{32, 8, 128, kPage, false, 0.0f};
    cpu::PagedAttention cpu_paged;
    samples.emplace_back("paged_schedule", time_calls(repeats, [&] { cpu_paged.plan(table, paged_shape); }));
    if (backend == harness::Backend::cuda) {
      cuda::PagedAttention paged(KvLayout::nhd);
      samples.emplace_back("paged_plan_upload", time_calls(repeats, [&] { paged.plan(table, paged_shape); }));
    }
    for (const auto& [what, sample] : samples) {
      std::printf("%-16s %-22s %10.1f us  (p10 %.1f)\n", c.name, what.c_str(), sample.median_us, sample.p10_us);
      char numbers[64];
      std::snprintf(numbers, sizeof numbers, "%.2f,%.2f", sample.median_us, sample.p10_us);
      rows += std::string(c.name) + "," + what + "," + std::to_string(c.batch) + "," + std::to_string(c.prompt) + "," + numbers + "," + card +
              "," + date + "," + CHUNKTREE_COMMIT + "\n";
    }
  }
  if (!csv.empty()) harness::write_text_file(csv, rows);
  return 0;
}

}  // namespace chunktree::tools
