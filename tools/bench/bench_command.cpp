// `chunktree bench`: decode-step attention on the papers' and peers' shapes (presets) or on a
// shape given by flags, with prefix sharing and without, against the card's floor.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bench/cases.hpp"
#include "bench/gpu_measure.hpp"
#include "bench/run_stats.hpp"
#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/numeric.hpp"
#include "chunktree/plan.hpp"
#include "chunktree_commit.hpp"
#include "commands.hpp"
#include "harness/backend.hpp"
#include "harness/random.hpp"
#include "harness/text_arrays.hpp"
#include "schedule/cost_model.hpp"
#include "options.hpp"

namespace chunktree::tools {
namespace {

constexpr const char* kUsage =
    "usage: chunktree bench [--preset NAME|all]... [--list] [--backend cpu|cuda|auto] [--warm] [--repeats N] [--settle-ms MS]\n"
    "                       [--split T] [--csv FILE] [--json FILE] [--ceilings-json FILE] [--cases-json FILE]\n"
    "                       [--batch N --heads H --kv-heads K --dim D --prefix P --suffix S --chunk C --queries Q]\n"
    "                       [--plan-splits SMS] [--read-reference]\n"
    "Times one decode step of attention for every case of the presets (default: chunkattn-t3 on a GPU,\n"
    "small on the CPU), with\n"
    "prefix sharing ('chunktree') and with every sequence read separately ('chunktree-noshare'); cases\n"
    "marked for it also through the levels API ('chunktree-levels', GPU only).\n"
    "Shape flags make one custom case instead. On a GPU each row has the median, p10 and p90 in us\n"
    "(CUDA events, cold L2 unless --warm, graph-captured where possible), TFLOP/s, unique-KV TB/s and\n"
    "the floor max(unique bytes / HBM bandwidth, FLOPs / bf16 tensor rate), both ceilings measured\n"
    "in this run. Without a GPU it runs the CPU backend and says so.\n"
    "  --settle-ms MS     idle time before each row's timed repeats (default 250): the card's power limiter\n"
    "                     averages over about a second, so a row must not inherit the clock the last one capped\n"
    "  --split T          KV tokens per work item (0: whole spans up to 32768; default: the CUDA backend's suggestion,\n"
    "                     512 on the CPU)\n"
    "  --queries Q        query tokens per sequence of a custom case (the last Q of the suffix, causal)\n"
    "  --cases-json FILE  write the selected preset's cases for bench/baselines.py and exit\n"
    "  --ceilings-json F  write the measured ceilings and card for bench/baselines.py\n"
    "  --read-reference   time, instead of attention, a plain read of each case's unique bytes ('hbm-read': the\n"
    "                     HBM ceiling's read kernel over one contiguous buffer of that size, timed as the rows\n"
    "                     are): what a kernel that only streams the bytes takes, launch and ramp included (GPU only)\n"
    "  --plan-splits SMS  print, as CSV, the split the cost model gives each case's two plans on a GPU of\n"
    "                     SMS SMs (132: the H200), and exit: no timing, no GPU (check a change of the model\n"
    "                     by the rows it re-plans)\n";

struct BenchOptions {
  std::vector<std::string> presets;
  bool list = false;
  std::string backend = "auto";
  bool warm = false;
  int repeats = 0;  // 0: 30 on the GPU, 3 on the CPU
  int settle_ms = 250;
  int split = -1;  // -1: cuda::plan_options (the cost model's split)
  std::string csv;
  std::string json;
  std::string ceilings_json;
  std::string cases_json;
  int plan_splits_sms = 0;  // > 0: print the cost model's splits for a GPU of this many SMs
  bool read_reference = false;  // time each case's plain read ('hbm-read') instead of its attention
  BenchCase custom;
  bool has_custom = false;
};

BenchOptions parse(Args args) {
  BenchOptions options;
  options.custom.name = "custom";
  auto shape = [&](std::string_view flag, std::string_view value, int& field, int min) {
    field = static_cast<int>(integer_option(flag, value, min, 1 << 24));
    options.has_custom = true;
  };
  int prefix = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--list") {
      options.list = true;
    } else if (flag == "--warm") {
      options.warm = true;
    } else if (flag == "--preset") {
      options.presets.emplace_back(option_value("bench", args, i));
    } else if (flag == "--backend") {
      options.backend = option_value("bench", args, i);
    } else if (flag == "--repeats") {
      options.repeats = static_cast<int>(integer_option(flag, option_value("bench", args, i), 1, 100000));
    } else if (flag == "--settle-ms") {
      options.settle_ms = static_cast<int>(integer_option(flag, option_value("bench", args, i), 0, 60000));
    } else if (flag == "--split") {
      options.split = static_cast<int>(integer_option(flag, option_value("bench", args, i), 0, 1 << 24));
    } else if (flag == "--csv") {
      options.csv = option_value("bench", args, i);
    } else if (flag == "--json") {
      options.json = option_value("bench", args, i);
    } else if (flag == "--ceilings-json") {
      options.ceilings_json = option_value("bench", args, i);
    } else if (flag == "--cases-json") {
      options.cases_json = option_value("bench", args, i);
    } else if (flag == "--read-reference") {
      options.read_reference = true;
    } else if (flag == "--plan-splits") {
      options.plan_splits_sms = static_cast<int>(integer_option(flag, option_value("bench", args, i), 1, 4096));
    } else if (flag == "--batch") {
      shape(flag, option_value("bench", args, i), options.custom.batch, 1);
    } else if (flag == "--heads") {
      shape(flag, option_value("bench", args, i), options.custom.q_heads, 1);
    } else if (flag == "--kv-heads") {
      shape(flag, option_value("bench", args, i), options.custom.kv_heads, 1);
    } else if (flag == "--dim") {
      shape(flag, option_value("bench", args, i), options.custom.head_dim, 64);
    } else if (flag == "--chunk") {
      shape(flag, option_value("bench", args, i), options.custom.chunk, 16);
    } else if (flag == "--suffix") {
      shape(flag, option_value("bench", args, i), options.custom.suffix, 0);
    } else if (flag == "--queries") {
      shape(flag, option_value("bench", args, i), options.custom.queries, 1);
    } else if (flag == "--prefix") {
      shape(flag, option_value("bench", args, i), prefix, 0);
    } else {
      throw Error(ErrorCode::invalid_argument, "bench: unknown option " + std::string(flag) + " (see --help)");
    }
  }
  if (options.plan_splits_sms > 0 && (options.split >= 0 || options.read_reference || options.warm || options.repeats > 0 ||
                                      options.settle_ms != 250 || options.backend != "auto" || !options.csv.empty() || !options.json.empty() ||
                                      !options.ceilings_json.empty() || !options.cases_json.empty())) {
    throw Error(ErrorCode::invalid_argument,
                "bench: --plan-splits prints the cost model's splits and times nothing: give it only --preset or shape flags");
  }
  const std::vector<std::pair<const char*, const std::string*>> outputs{
      {"--csv", &options.csv}, {"--json", &options.json}, {"--ceilings-json", &options.ceilings_json}, {"--cases-json", &options.cases_json}};
  for (std::size_t a = 0; a < outputs.size(); ++a) {
    for (std::size_t b = a + 1; b < outputs.size(); ++b) {
      const std::string& first = *outputs[a].second;
      const std::string& second = *outputs[b].second;
      const auto where = [](const std::string& path) { return std::filesystem::weakly_canonical(std::filesystem::absolute(path)); };
      if (!first.empty() && !second.empty() && where(first) == where(second)) {
        throw Error(ErrorCode::invalid_argument, std::string("bench: ") + outputs[a].first + " and " + outputs[b].first + " name one file (" +
                                                     first + "): give each its own");
      }
    }
  }
  if (prefix > 0) options.custom.levels = {SharedLevel{1, prefix}};
  if (options.has_custom && options.custom.sequence_tokens() < 1) {
    throw Error(ErrorCode::invalid_argument, "bench: a custom case needs --prefix or --suffix tokens");
  }
  if (options.has_custom && options.custom.queries > 1 && options.custom.queries > options.custom.suffix) {
    throw Error(ErrorCode::invalid_argument, "bench: --queries " + std::to_string(options.custom.queries) +
                                                 " needs a --suffix of at least as many tokens (the query tokens are the suffix's last ones)");
  }
  return options;
}

// No preset named: the representative one on a GPU; on the CPU, which is a thousand times
// slower, the small one.
std::vector<Preset> selected_presets(const BenchOptions& options, harness::Backend backend) {
  if (options.has_custom) return {Preset{"custom", "shape from flags", {options.custom}}};
  if (options.presets.empty()) return {find_preset(backend == harness::Backend::cuda ? default_preset_name() : "small")};
  std::vector<Preset> selected;
  for (const std::string& name : options.presets) {
    if (name == "all") return presets();
    selected.push_back(find_preset(name));
  }
  return selected;
}

// The cache and batch of a case (its tokens: BenchCase::sequences).
struct CaseWorkload {
  PrefixCache cache;
  std::vector<SeqId> batch;
};

// A case's sequences added to a cache of these kv heads and head dim (no KV written); `slots`, if
// given, receives every token's slot in batch order.
CaseWorkload add_case(const BenchCase& c, int kv_heads, int head_dim, Device device, std::vector<Slot>* slots = nullptr) {
  CacheConfig config;
  config.num_kv_heads = kv_heads;
  config.head_dim = head_dim;
  config.chunk_size = c.chunk;
  config.dtype = DType::bf16;
  config.device = device;
  config.capacity_chunks = c.cache_chunks();
  CaseWorkload w{PrefixCache(config), {}};
  for (const std::vector<Token>& tokens : c.sequences()) {
    const AddResult added = w.cache.add(tokens);
    if (slots != nullptr) slots->insert(slots->end(), added.slots.begin(), added.slots.end());
    w.batch.push_back(added.seq);
  }
  return w;
}

CaseWorkload build_workload(const BenchCase& c, harness::Backend backend, std::uint64_t seed) {
  std::vector<Slot> slots;
  CaseWorkload w = add_case(c, c.kv_heads, c.head_dim, harness::backend_device(backend), &slots);

  const std::int64_t count = static_cast<std::int64_t>(slots.size()) * c.kv_heads * c.head_dim;
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(slots.size()), c.kv_heads, c.head_dim};
  if (backend == harness::Backend::cuda) {
    harness::GpuBuffer k(static_cast<std::size_t>(count) * 2);
    harness::GpuBuffer v(static_cast<std::size_t>(count) * 2);
    fill_random(k.data(), DType::bf16, count, seed);
    fill_random(v.data(), DType::bf16, count, seed + 1);
    w.cache.write_kv(0, slots, ConstTensorView(k.data(), DType::bf16, Device::cuda, shape),
                     ConstTensorView(v.data(), DType::bf16, Device::cuda, shape));
  } else {
    harness::Random random(seed);
    std::vector<float> k(static_cast<std::size_t>(count));
    std::vector<float> v(k.size());
    for (float& x : k) x = static_cast<float>(random.normal());
    for (float& x : v) x = static_cast<float>(random.normal());
    w.cache.write_kv(0, slots, ConstTensorView(k.data(), DType::f32, Device::cpu, shape),
                     ConstTensorView(v.data(), DType::f32, Device::cpu, shape));
  }
  return w;
}

struct Row {
  std::string preset;
  const BenchCase* bench_case = nullptr;
  std::string impl;
  double median_us = 0, p10_us = 0, p90_us = 0;
  double tflops = 0, tbps = 0, floor_us = 0, x_floor = 0;
  bool graph = false;
  bool cold_l2 = true;
  std::string note;
};

struct RunInfo {
  harness::Backend backend = harness::Backend::cpu;
  CardInfo card;
  Ceilings ceilings;
  CallFloors call_floors;
  std::string date;
};

// Fills the row's statistics, floor and identity from the measured times.
void finish_row(Row& row, const std::string& preset, const BenchCase& c, const char* impl, std::vector<double> us, const RunInfo& info) {
  row.preset = preset;
  row.bench_case = &c;
  row.impl = impl;
  row.median_us = percentile(us, 0.5);
  row.p10_us = percentile(us, 0.1);
  row.p90_us = percentile(us, 0.9);
  row.tflops = c.flops() / (row.median_us * 1e6);
  row.tbps = c.unique_bytes() / (row.median_us * 1e6);
  if (info.backend == harness::Backend::cuda) {
    row.floor_us = std::max(c.unique_bytes() / info.ceilings.hbm_bytes_per_s, c.flops() / info.ceilings.bf16_flops_per_s) * 1e6;
    row.x_floor = row.median_us / row.floor_us;
  }
}

Row time_case(const std::string& preset, const BenchCase& c, CaseWorkload& w, const char* impl, const PlanOptions& plan_options,
              const BenchOptions& options, const RunInfo& info) {
  const Plan plan = make_plan(w.cache, w.batch, plan_options);
  const std::int64_t tokens = static_cast<std::int64_t>(w.batch.size()) * c.queries;
  const std::vector<std::int64_t> q_shape{tokens, c.q_heads, c.head_dim};
  AttentionParams params;
  params.num_q_heads = c.q_heads;
  std::vector<double> us;
  Row row;
  if (info.backend == harness::Backend::cuda) {
    const std::int64_t count = tokens * c.q_heads * c.head_dim;
    harness::GpuBuffer q(static_cast<std::size_t>(count) * 2);
    harness::GpuBuffer out(static_cast<std::size_t>(count) * 2);
    fill_random(q.data(), DType::bf16, count, 99);
    const cuda::DevicePlan device_plan(w.cache, plan, params);
    const Timing timing = time_on_gpu(
        [&](void* stream) {
          cuda::attend(w.cache, device_plan, 0, ConstTensorView(q.data(), DType::bf16, Device::cuda, q_shape),
                       TensorView{out.data(), DType::bf16, Device::cuda, q_shape}, {}, stream);
        },
        5, options.repeats > 0 ? options.repeats : 30, !options.warm, options.settle_ms);
    us = timing.microseconds;
    row.graph = timing.graph;
    row.cold_l2 = !options.warm;
  } else {
    harness::Random random(99);
    std::vector<float> q(static_cast<std::size_t>(tokens * c.q_heads * c.head_dim));
    for (float& x : q) x = round_to(DType::bf16, static_cast<float>(random.normal()));
    std::vector<float> out(q.size());
    const ConstTensorView q_view(q.data(), DType::f32, Device::cpu, q_shape);
    const TensorView out_view{out.data(), DType::f32, Device::cpu, q_shape};
    cpu::attend(w.cache, plan, 0, q_view, out_view, {}, params);  // warm-up
    for (int r = 0; r < (options.repeats > 0 ? options.repeats : 3); ++r) {
      const auto start = std::chrono::steady_clock::now();
      cpu::attend(w.cache, plan, 0, q_view, out_view, {}, params);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    row.cold_l2 = false;
  }
  finish_row(row, preset, c, impl, std::move(us), info);
  row.note = "split " + std::to_string(plan.max_item_tokens) + ", " + std::to_string(plan.items.size()) + " items (" +
             std::to_string(plan.num_shared_items) + " shared)";
  return row;
}

// The case's unique bytes read once, contiguously, by the read kernel that sets the HBM ceiling
// (from `data`, a buffer of at least that many bytes), timed as the attention rows are (warm-ups, a
// cold L2, one graph-captured launch per repeat): what a kernel that does nothing but stream those
// bytes takes on this card, launch and ramp included. The floor prices the same bytes at the
// ceiling's rate alone, measured over 4 GiB, so a row's distance from the floor is read beside it.
Row time_read_case(const std::string& preset, const BenchCase& c, const void* data, unsigned* sink, const BenchOptions& options,
                   const RunInfo& info) {
  const auto bytes = static_cast<std::int64_t>(std::ceil(c.unique_bytes()));
  const Timing timing = time_on_gpu([&](void* stream) { launch_hbm_read(data, bytes, sink, info.card.multiprocessors, stream); }, 5,
                                    options.repeats > 0 ? options.repeats : 30, !options.warm, options.settle_ms);
  Row row;
  row.graph = timing.graph;
  row.cold_l2 = !options.warm;
  finish_row(row, preset, c, "hbm-read", timing.microseconds, info);
  row.tflops = 0;  // it computes nothing
  char note[96];
  std::snprintf(note, sizeof note, "a plain read of the case's %.1f MB of unique bytes, contiguous", static_cast<double>(bytes) / 1e6);
  row.note = note;
  return row;
}

// The case through the levels API on the GPU, as an engine that owns its KV would call it: each
// level's segments in one contiguous buffer, the suffixes in another, random bf16 data.
Row time_levels_case(const std::string& preset, const BenchCase& c, const BenchOptions& options, const RunInfo& info, std::uint64_t seed) {
  const std::int64_t token_elements = static_cast<std::int64_t>(c.kv_heads) * c.head_dim;
  std::vector<harness::GpuBuffer> buffers;
  const auto random_buffer = [&](std::int64_t tokens) {
    buffers.emplace_back(static_cast<std::size_t>(std::max<std::int64_t>(tokens, 1) * token_elements) * 2);
    fill_random(buffers.back().data(), DType::bf16, tokens * token_elements, seed++);
    return static_cast<const std::uint16_t*>(buffers.back().data());
  };
  const auto segment = [&](const std::uint16_t* k, const std::uint16_t* v, std::int64_t first, std::int64_t tokens) {
    KvSegment kv;
    kv.length = tokens;
    kv.k = ConstTensorView(k + first * token_elements, DType::bf16, Device::cuda, {tokens, c.kv_heads, c.head_dim});
    kv.v = ConstTensorView(v + first * token_elements, DType::bf16, Device::cuda, {tokens, c.kv_heads, c.head_dim});
    return kv;
  };
  buffers.reserve(2 * c.levels.size() + 2);
  Levels levels;
  levels.queries_per_seq = c.queries;
  for (const SharedLevel& level : c.levels) {
    const std::uint16_t* k = random_buffer(static_cast<std::int64_t>(level.segments) * level.tokens);
    const std::uint16_t* v = random_buffer(static_cast<std::int64_t>(level.segments) * level.tokens);
    levels.levels.emplace_back();
    const int per_segment = c.batch / level.segments;
    for (int j = 0; j < level.segments; ++j) {
      levels.levels.back().push_back(SharedSegment{segment(k, v, static_cast<std::int64_t>(j) * level.tokens, level.tokens),
                                                   static_cast<std::int64_t>(j) * per_segment, static_cast<std::int64_t>(j + 1) * per_segment});
    }
  }
  if (c.suffix > 0) {
    const std::uint16_t* k = random_buffer(static_cast<std::int64_t>(c.batch) * c.suffix);
    const std::uint16_t* v = random_buffer(static_cast<std::int64_t>(c.batch) * c.suffix);
    for (int b = 0; b < c.batch; ++b) levels.own.push_back(segment(k, v, static_cast<std::int64_t>(b) * c.suffix, c.suffix));
  }
  const std::int64_t tokens = static_cast<std::int64_t>(c.batch) * c.queries;
  const std::vector<std::int64_t> q_shape{tokens, c.q_heads, c.head_dim};
  const std::int64_t count = tokens * c.q_heads * c.head_dim;
  harness::GpuBuffer q(static_cast<std::size_t>(count) * 2);
  harness::GpuBuffer out(static_cast<std::size_t>(count) * 2);
  fill_random(q.data(), DType::bf16, count, 99);
  const ConstTensorView q_view(q.data(), DType::bf16, Device::cuda, q_shape);
  const cuda::LevelsPlan plan(levels, q_view);
  const Timing timing = time_on_gpu(
      [&](void* stream) { cuda::attend_levels(plan, q_view, TensorView{out.data(), DType::bf16, Device::cuda, q_shape}, {}, stream); }, 5,
      options.repeats > 0 ? options.repeats : 30, !options.warm, options.settle_ms);
  Row row;
  row.graph = timing.graph;
  row.cold_l2 = !options.warm;
  finish_row(row, preset, c, "chunktree-levels", timing.microseconds, info);
  row.note = "levels API, " + std::to_string(levels.levels.size()) + " shared levels" + (c.suffix > 0 ? " + own KV" : "");
  return row;
}

// The row's line of the table bench prints as it goes.
void print_row(const Row& row) {
  char floor[48] = "-";
  if (row.floor_us > 0) std::snprintf(floor, sizeof floor, "%10.1f %8.2f", row.floor_us, row.x_floor);
  std::printf("%-20s %-26s %-18s %10.1f %10.1f %10.1f %8.3f %8.3f %19s %5s\n", row.preset.c_str(), row.bench_case->name.c_str(), row.impl.c_str(),
              row.median_us, row.p10_us, row.p90_us, row.tflops, row.tbps, floor, row.graph ? "yes" : "no");
  std::fflush(stdout);
}

std::string csv_line(const Row& row, const RunInfo& info) {
  const BenchCase& c = *row.bench_case;
  char numbers[256];
  std::snprintf(numbers, sizeof numbers, "%.2f,%.2f,%.2f,%.3f,%.3f,%s,%s", row.median_us, row.p10_us, row.p90_us, row.tflops, row.tbps,
                row.floor_us > 0 ? std::to_string(row.floor_us).c_str() : "", row.x_floor > 0 ? std::to_string(row.x_floor).c_str() : "");
  return row.preset + "," + c.name + "," + row.impl + "," + std::to_string(c.batch) + "," + std::to_string(c.q_heads) + "," +
         std::to_string(c.kv_heads) + "," + std::to_string(c.head_dim) + "," + std::to_string(c.chunk) + "," +
         std::to_string(c.shared_tokens()) + "," + std::to_string(c.suffix) + "," + numbers + "," + (row.graph ? "yes" : "no") + "," +
         (row.cold_l2 ? "yes" : "no") + "," + info.card.name + "," + info.card.driver + "," + info.date + "," + CHUNKTREE_COMMIT + ",\"" +
         row.note + "\"";
}

constexpr const char* kCsvHeader =
    "preset,case,impl,batch,q_heads,kv_heads,head_dim,chunk,shared_tokens,suffix,median_us,p10_us,p90_us,tflops,unique_kv_tbps,"
    "floor_us,x_floor,graph,cold_l2,card,driver,date,commit,note";

std::string ceilings_object(const RunInfo& info) {
  std::string reads;
  for (double read : info.ceilings.hbm_reads) {
    char number[32];
    std::snprintf(number, sizeof number, "%s%.6g", reads.empty() ? "" : ", ", read);
    reads += number;
  }
  char text[640];
  std::snprintf(text, sizeof text,
                "{\"hbm_bytes_per_s\": %.6g, \"hbm_reads_bytes_per_s\": [%s], \"bf16_flops_per_s\": %.6g, \"one_launch_us\": %.3g, "
                "\"two_launches_us\": %.3g, \"card\": \"%s\", \"driver\": \"%s\", \"date\": \"%s\", \"commit\": \"%s\"}",
                info.ceilings.hbm_bytes_per_s, reads.c_str(), info.ceilings.bf16_flops_per_s, info.call_floors.one_launch_us,
                info.call_floors.two_launches_us, info.card.name.c_str(), info.card.driver.c_str(), info.date.c_str(),
                CHUNKTREE_COMMIT);
  return text;
}

// The cost model's item split of each case's two plans (shared, noshare) on a GPU of
// `multiprocessors` SMs, as the CSV's `split` and `items` notes would read, without timing or a GPU:
// the spans come from make_plan over a CPU cache of one kv head of d 64 that holds the case's tokens
// (spans depend on the tokens alone), the split from the case's own heads, head dim and queries.
void print_plan_splits(const std::vector<Preset>& chosen, int multiprocessors) {
  std::printf("preset,case,impl,split,items\n");
  for (const Preset& preset : chosen) {
    for (const BenchCase& c : preset.cases) {
      const CaseWorkload w = add_case(c, 1, 64, Device::cpu);
      const cost_model::SplitShape shape{c.q_heads, c.kv_heads, c.head_dim, c.queries, c.chunk};
      for (const auto& [impl, min_shared_rows] : {std::pair{"chunktree", 2}, std::pair{"chunktree-noshare", c.batch + 1}}) {
        PlanOptions options{min_shared_rows, 0, c.queries};
        options.choose_max_item_tokens = [&](std::span<const SpanSize> spans) { return cost_model::cheapest_split(spans, shape, multiprocessors); };
        const Plan plan = make_plan(w.cache, w.batch, options);
        std::printf("%s,%s,%s,%lld,%zu\n", preset.name.c_str(), c.name.c_str(), impl, static_cast<long long>(plan.max_item_tokens),
                    plan.items.size());
      }
    }
  }
}

void list_presets() {
  for (const Preset& preset : presets()) {
    std::printf("%s: %s\n", preset.name.c_str(), preset.description.c_str());
    for (const BenchCase& c : preset.cases) {
      std::printf("  %-24s batch %4d, %2d/%2d heads, d %d, shared %6lld, suffix %4d\n", c.name.c_str(), c.batch, c.q_heads, c.kv_heads,
                  c.head_dim, static_cast<long long>(c.shared_tokens()), c.suffix);
    }
  }
}

}  // namespace

int bench_command(Args args) {
  const BenchOptions options = parse(args);
  if (options.list) {
    list_presets();
    return 0;
  }
  if (options.plan_splits_sms > 0) {
    print_plan_splits(selected_presets(options, harness::Backend::cuda), options.plan_splits_sms);
    return 0;
  }
  RunInfo info;
  info.backend = options.cases_json.empty() ? select_backend(options.backend) : harness::Backend::cuda;
  if (options.read_reference && (options.split >= 0 || !options.cases_json.empty())) {
    throw Error(ErrorCode::invalid_argument,
                "bench: --read-reference times plain reads: it plans nothing (no --split) and writes no cases (no --cases-json)");
  }
  if (options.read_reference && info.backend != harness::Backend::cuda) {
    throw Error(ErrorCode::invalid_argument, "bench: --read-reference times reads of GPU memory and needs a GPU (the CUDA backend)");
  }
  const std::vector<Preset> chosen = selected_presets(options, info.backend);
  if (!options.cases_json.empty()) {
    if (chosen.size() != 1) throw Error(ErrorCode::invalid_argument, "bench: --cases-json takes exactly one preset");
    harness::write_text_file(options.cases_json, cases_json(chosen.front()));
    return 0;
  }

  for (const std::string* output : {&options.ceilings_json, &options.csv, &options.json}) {  // refused now, not after the run
    if (!output->empty()) harness::expect_writable(*output);
  }
  info.date = utc_date();
  if (info.backend == harness::Backend::cuda) {
    info.card = card_info();
    info.ceilings = measure_ceilings();
    std::printf("card: %s, driver %s, %d SMs; %s; commit %s\n", info.card.name.c_str(), info.card.driver.c_str(),
                info.card.multiprocessors, info.date.c_str(), CHUNKTREE_COMMIT);
    std::printf("ceilings measured now: HBM read %.2f TB/s, bf16 tensor %.0f TFLOP/s; L2 %s; %d ms idle before each row's repeats\n",
                info.ceilings.hbm_bytes_per_s / 1e12, info.ceilings.bf16_flops_per_s / 1e12,
                options.warm ? "warm" : "flushed before every repeat (cold)", options.settle_ms);
    info.call_floors = measure_call_floors(!options.warm, options.settle_ms);
    std::printf("smallest calls, same method: one launch %.1f us, two dependent launches %.1f us\n", info.call_floors.one_launch_us,
                info.call_floors.two_launches_us);
  } else {
    info.card.name = "cpu";
    std::printf("backend: cpu (%s): CPU timings, no GPU floor\n",
                options.backend == "cpu" ? "asked for" : "no Hopper GPU visible, so the CPU backend runs");
  }
  if (!options.ceilings_json.empty()) harness::write_text_file(options.ceilings_json, ceilings_object(info) + "\n");

  std::vector<Row> rows;
  std::printf("%-20s %-26s %-18s %10s %10s %10s %8s %8s %10s %8s %5s\n", "preset", "case", "impl", "median_us", "p10_us", "p90_us",
              "TFLOP/s", "TB/s", "floor_us", "x_floor", "graph");
  std::uint64_t seed = 1;
  // The read reference's buffer: random data, as large as the largest case's unique bytes.
  std::optional<harness::GpuBuffer> read_data;
  std::optional<harness::GpuBuffer> read_sink;
  if (options.read_reference) {
    double largest = 16;
    for (const Preset& preset : chosen) {
      for (const BenchCase& c : preset.cases) largest = std::max(largest, c.unique_bytes());
    }
    const auto bytes = static_cast<std::int64_t>(std::ceil(largest / 16)) * 16;
    read_data.emplace(static_cast<std::size_t>(bytes));
    read_sink.emplace(sizeof(unsigned));
    fill_random(read_data->data(), DType::bf16, bytes / 2, 7);
  }
  for (const Preset& preset : chosen) {
    for (const BenchCase& c : preset.cases) {
      if (options.read_reference) {
        const Row row = time_read_case(preset.name, c, read_data->data(), static_cast<unsigned*>(read_sink->data()), options, info);
        print_row(row);
        rows.push_back(row);
        continue;
      }
      CaseWorkload w = build_workload(c, info.backend, seed += 2);
      // Each mode gets the split that suits it, unless --split fixes one for both.
      auto options_for = [&](int min_shared_rows) {
        const PlanOptions base{min_shared_rows, options.split < 0 ? 512 : options.split, c.queries};
        if (options.split >= 0 || info.backend != harness::Backend::cuda) return base;
        return cuda::plan_options(w.cache, AttentionParams{c.q_heads}, base);
      };
      const PlanOptions shared = options_for(2);
      const PlanOptions separate = options_for(c.batch + 1);
      std::vector<std::pair<const char*, PlanOptions>> impls{{"chunktree", shared}, {"chunktree-noshare", separate}};
      if (c.through_levels && info.backend == harness::Backend::cuda) impls.emplace_back("chunktree-levels", shared);
      for (const auto& [impl, plan_options] : impls) {
        const Row row = std::string_view(impl) == "chunktree-levels" ? time_levels_case(preset.name, c, options, info, seed + 100)
                                                                      : time_case(preset.name, c, w, impl, plan_options, options, info);
        print_row(row);
        rows.push_back(row);
      }
    }
  }

  if (!options.csv.empty()) {
    std::string text = std::string(kCsvHeader) + "\n";
    for (const Row& row : rows) text += csv_line(row, info) + "\n";
    harness::write_text_file(options.csv, text);
  }
  if (!options.json.empty()) {
    std::string text = "{\"ceilings\": " + ceilings_object(info) + ",\n \"columns\": \"" + kCsvHeader + "\",\n \"rows\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::string line = csv_line(rows[i], info);
      std::string escaped;
      for (char ch : line) escaped += ch == '"' ? std::string("\\\"") : std::string(1, ch);
      text += std::string(i ? ",\n  " : "\n  ") + "\"" + escaped + "\"";
    }
    harness::write_text_file(options.json, text + "\n]}\n");
  }
  return 0;
}

}  // namespace chunktree::tools
