#include "cuda/device_work.cuh"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <string>

#include "runtime/check.cuh"
#include "kernels/merge_rows.cuh"
#include "kernels/scatter_sections.cuh"
#include "schedule/cost_model.hpp"

namespace chunktree::cuda_work {

using kernels::Grid;
using kernels::PartialArgs;
using kernels::SlotClaims;
using kernels::WorkTile;

void DestroyEvent::operator()(cudaEvent_t event) const noexcept { cudaEventDestroy(event); }  // errors here have nowhere to go

bool Capacity::holds(const Capacity& need) const {
  return need.wgmma_tiles <= wgmma_tiles && need.mma_sync_tiles <= mma_sync_tiles && need.runs <= runs &&
         need.rows <= rows && need.merge_states <= merge_states && need.state_heads <= state_heads;
}

namespace {

// An asynchronous load sizes each section for kRoomFactor times what its first work needs, and
// at least its floor: a decode loop's plans change every step (a token per sequence, forks and
// finished sequences, another item split), and a captured graph can follow them only while they
// fit. The floors cost ~1 MB of tables and 8 MiB of states at head dim 128.
constexpr std::size_t kRoomFactor = 4;
constexpr Capacity kRoomFloor{4096, 4096, 8192, 1024, 8192, 16384};

Capacity with_room(const Capacity& need) {
  const auto room = [](std::size_t n, std::size_t floor) { return std::max(n * kRoomFactor, floor); };
  const Capacity& f = kRoomFloor;
  return Capacity{room(need.wgmma_tiles, f.wgmma_tiles), room(need.mma_sync_tiles, f.mma_sync_tiles),
                  room(need.runs, f.runs),               room(need.rows, f.rows),
                  room(need.merge_states, f.merge_states), room(need.state_heads, f.state_heads)};
}

Capacity largest(const Capacity& a, const Capacity& b) {
  return Capacity{std::max(a.wgmma_tiles, b.wgmma_tiles), std::max(a.mma_sync_tiles, b.mma_sync_tiles),
                  std::max(a.runs, b.runs),               std::max(a.rows, b.rows),
                  std::max(a.merge_states, b.merge_states), std::max(a.state_heads, b.state_heads)};
}

std::string describe(const Capacity& c) {
  return std::to_string(c.rows) + " rows, " + std::to_string(c.runs) + " KV runs, " +
         std::to_string(c.wgmma_tiles) + " wgmma and " + std::to_string(c.mma_sync_tiles) + " mma.sync tiles, " +
         std::to_string(c.merge_states) + " merged states, " + std::to_string(c.state_heads) + " state heads";
}

#if CHUNKTREE_TILE_TRACE
// While replays are traced (CHUNKTREE_TILE_TRACE_REPLAYED), an eager call's launches on `stream` and
// its second stream stamp nothing (kernels/tile_trace.cuh), so that the tables it writes are the
// last replay's; stamping comes back on when the call ends, however it ends. The tables hold as
// many tiles as the eager call launches: trace replays of the plan the eager call runs.
class EagerStampsOff {
 public:
  explicit EagerStampsOff(cudaStream_t stream) : stream_(stream) { stamp(false); }
  EagerStampsOff(const EagerStampsOff&) = delete;
  EagerStampsOff& operator=(const EagerStampsOff&) = delete;
  // A destructor must not throw: a failed copy here follows an earlier CUDA error, which the call
  // already reported.
  ~EagerStampsOff() {
    try {
      stamp(true);
    } catch (const Error&) {
    }
  }

 private:
  void stamp(bool on) const {
    kernels::set_mma_sync_trace_stamping(stream_, on);
    kernels::set_wgmma_trace_stamping(stream_, on);
  }
  cudaStream_t stream_;
};
#endif

// Where the SMs are split between the kernels (cost_model::wgmma_sms; experiment 95), the mma.sync CTAs
// that take tiles: those of the SMs the wgmma tiles leave. 0 (every CTA) where they are not split.
std::uint32_t partitioned_mma_sync_ctas(std::uint32_t wgmma_sms, int head_dim) {
  if (wgmma_sms == 0) return 0;
  return (static_cast<std::uint32_t>(kernels::multiprocessor_count()) - wgmma_sms) * static_cast<std::uint32_t>(kernels::mma_sync_ctas_per_sm(head_dim));
}

}  // namespace

bool capturing(cudaStream_t stream) {
  if (stream == nullptr) return false;  // the legacy stream cannot capture
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CHUNKTREE_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

namespace {

// A trace build's tables of an eager call (kernels/tile_trace.cuh), once its launches are queued
// (after the join, so that the kernels ran side by side as untraced): of every eager call, or only
// of the n-th (from 1) when CHUNKTREE_TILE_TRACE_CALL is n (a benchmark's later calls of other plans
// would overwrite them). Calls that are not wanted drop their launches' notes, so that a wanted call
// without one of the kernels writes no stale table of an earlier call for it. While replays are
// traced, no units table is written (tile_trace::write), so neither is the merge's.
void write_traces([[maybe_unused]] cudaStream_t stream) {
#if CHUNKTREE_TILE_TRACE
  static std::uint64_t eager_calls = 0;
  if (capturing(stream)) return;
  const char* wanted = std::getenv("CHUNKTREE_TILE_TRACE_CALL");
  const bool keep = wanted == nullptr || std::strtoull(wanted, nullptr, 10) == ++eager_calls;
  kernels::write_mma_sync_trace(stream, keep);
  kernels::write_wgmma_trace(stream, keep);
  kernels::write_merge_trace(stream, keep);
#endif
}

}  // namespace

// Byte offsets of the sections: the tables the host writes first, then (for asynchronous loads)
// the staging that receives them packed, then the states the kernels write.
struct DeviceWork::Layout {
  static constexpr std::size_t kAlignment = 256;
  std::size_t end = 0;
  // A section of `bytes`, rounded up to 16 so that the scatter's 16-byte words stay inside it.
  std::size_t place(std::size_t bytes) {
    const std::size_t offset = (end + kAlignment - 1) / kAlignment * kAlignment;
    end = offset + (bytes + 15) / 16 * 16;
    return offset;
  }
  Layout(const Capacity& c, int head_dim, bool staged)
      : counts(place(sizeof(LiveCounts))),
        wgmma_tiles(place(c.wgmma_tiles * sizeof(WorkTile))),
        mma_sync_tiles(place(c.mma_sync_tiles * sizeof(WorkTile))),
        row_to_batch(place(c.rows * sizeof(std::uint32_t))),
        row_limit(place(c.rows * sizeof(std::int32_t))),
        merge_begin(place((c.rows + 1) * sizeof(std::uint32_t))),
        merge_states(place(c.merge_states * sizeof(std::uint32_t))),
        runs(place(c.runs * sizeof(work::KvRun))),
        tables_end(end),
        staging(place(staged ? tables_end : 0)),  // the tables packed: each at most its section's bytes
        state_o(place(c.state_heads * static_cast<std::size_t>(head_dim) * sizeof(float))),
        state_lse(place(c.state_heads * sizeof(float))),
        state_max(place(c.state_heads * sizeof(float))),
        slot_claims(place(sizeof(SlotClaims))) {}
  std::size_t counts, wgmma_tiles, mma_sync_tiles, row_to_batch, row_limit, merge_begin, merge_states, runs, tables_end;
  std::size_t staging, state_o, state_lse, state_max, slot_claims;
};

// A second stream and the events that fork it from the caller's stream and join it back, so
// that the wgmma tiles run beside the mma.sync tiles (under graph capture: two branches).
class ForkedStream {
 public:
  ForkedStream() {
    try {
      CHUNKTREE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      CHUNKTREE_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
      CHUNKTREE_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~ForkedStream() { destroy(); }
  ForkedStream(const ForkedStream&) = delete;
  ForkedStream& operator=(const ForkedStream&) = delete;

  cudaStream_t fork(cudaStream_t from) {
    CHUNKTREE_CUDA_CHECK(cudaEventRecord(fork_, from));
    CHUNKTREE_CUDA_CHECK(cudaStreamWaitEvent(stream_, fork_));
    return stream_;
  }
  void join(cudaStream_t into) {
    CHUNKTREE_CUDA_CHECK(cudaEventRecord(join_, stream_));
    CHUNKTREE_CUDA_CHECK(cudaStreamWaitEvent(into, join_));
  }

 private:
  void destroy() noexcept {  // errors here have nowhere to go
    if (join_ != nullptr) cudaEventDestroy(join_);
    if (fork_ != nullptr) cudaEventDestroy(fork_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
  cudaEvent_t fork_ = nullptr;
  cudaEvent_t join_ = nullptr;
};

DeviceWork::DeviceWork(int q_heads, int kv_heads, int head_dim) : q_heads_(q_heads), group_(q_heads / kv_heads), head_dim_(head_dim) {
  if (kv_heads > std::numeric_limits<std::uint16_t>::max()) {  // a tile record holds its kv head in 16 bits
    throw Error(ErrorCode::unsupported, "cuda backend: " + std::to_string(kv_heads) + " kv heads; at most 65535 are supported");
  }
}

DeviceWork::~DeviceWork() {
  if (staged_copied_ != nullptr) cudaEventSynchronize(staged_copied_.get());  // the staging is freed next; errors have nowhere to go
}

DeviceWork::DeviceWork(DeviceWork&&) noexcept = default;
DeviceWork& DeviceWork::operator=(DeviceWork&&) noexcept = default;

void DeviceWork::load(const work::Work& w, Upload upload, cudaStream_t stream) {
  if (capturing(stream)) {
    throw Error(ErrorCode::invalid_argument, "cuda backend: load the plan (DevicePlan::update, PagedAttention::plan) outside the stream "
                                             "capture; the captured launches read whatever plan the last load before a replay gave");
  }
  if (captured_ && !replayable_) {
    throw Error(ErrorCode::invalid_argument, "cuda backend: a CUDA graph captured this DevicePlan's launches for the one plan it was "
                                             "made with; to replay later plans, make it without a plan (DevicePlan(cache, params)) and "
                                             "update() it before capturing");
  }
  const std::int64_t query_tokens = static_cast<std::int64_t>(w.num_rows()) * w.queries_per_seq;
  if (captured_ && replayable_ && query_tokens > captured_tokens_) {
    throw Error(ErrorCode::capacity_exhausted, "cuda backend: this plan has " + std::to_string(query_tokens) +
                                                   " query tokens; the q, out and lse that a CUDA graph captured hold " +
                                                   std::to_string(captured_tokens_) +
                                                   ". Capture again with buffers of the largest batch (a new DevicePlan or PagedAttention; "
                                                   "Python: a new CacheAttention or PagedAttention)");
  }
  if (captured_ && w.queries_per_seq != queries_) {
    throw Error(ErrorCode::invalid_argument, "cuda backend: a CUDA graph captured this plan's launches with " + std::to_string(queries_) +
                                                 " query tokens per sequence; a plan with " + std::to_string(w.queries_per_seq) +
                                                 " needs launches of its own (a new DevicePlan or PagedAttention)");
  }
  // The tiles: every (item, kv head, block of query rows), or of a short narrow item every (item,
  // up to four kv heads) (kernels/tile_shapes.hpp), longest tiles first, so that the last tiles to
  // start are the short ones and the grid ends evenly. The items are ordered, not the tiles: a tile
  // record is 96 bytes, and sorting thousands of them cost more than the rest of a load (B = 1024:
  // 160 -> 351 us of host time per update, docs/KERNEL_NOTES.md, experiment 19).
  const int kv_heads = q_heads_ / group_;
  const auto query_rows_of = [&](const work::Item& item) {
    return static_cast<std::int64_t>(item.row_end - item.row_begin) * w.queries_per_seq * group_;
  };
  kernels::PackingContext packing{0, false, kernels::multiprocessor_count()};
  for (const work::Item& item : w.items) {
    const std::int64_t query_rows = query_rows_of(item);
    packing.add(query_rows, kernels::uses_wgmma(query_rows, head_dim_), kv_heads, 1);
  }
  const auto heads_per_tile = [&](const work::Item& item) {
    const std::int64_t query_rows = query_rows_of(item);
    return kernels::uses_wgmma(query_rows, head_dim_) ? 1 : kernels::mma_sync_heads_per_tile(query_rows, item.tokens, kv_heads, packing);
  };
  // The key (positions a tile of the item streams, all its heads) once per item, not per comparison.
  item_tile_tokens_.resize(w.items.size());
  for (std::size_t i = 0; i < w.items.size(); ++i) item_tile_tokens_[i] = w.items[i].tokens * heads_per_tile(w.items[i]);
  item_order_.resize(w.items.size());
  std::iota(item_order_.begin(), item_order_.end(), 0u);
  std::sort(item_order_.begin(), item_order_.end(), [&](std::uint32_t a, std::uint32_t b) {
    const std::int64_t tile_a = item_tile_tokens_[a];
    const std::int64_t tile_b = item_tile_tokens_[b];
    return tile_a != tile_b ? tile_a > tile_b : a < b;  // stable, without a buffer
  });
  wgmma_tiles_.clear();
  mma_sync_tiles_.clear();
  for (const std::uint32_t i : item_order_) {
    const work::Item& item = w.items[i];
    const auto query_rows = static_cast<std::uint32_t>(query_rows_of(item));
    const bool wgmma = kernels::uses_wgmma(query_rows, head_dim_);
    std::vector<WorkTile>& tiles = wgmma ? wgmma_tiles_ : mma_sync_tiles_;
    const std::uint32_t tile_rows = wgmma ? kernels::kWgmmaTileRows : kernels::kMmaSyncTileRows;
    const int heads = heads_per_tile(item);
    const work::KvRun first_run = item.run_begin < item.run_end ? w.runs[item.run_begin] : work::KvRun{};
    const bool has_rows = item.row_begin < item.row_end;
    const std::uint32_t first_row_batch = has_rows ? w.row_to_batch[item.row_begin] : 0;
    const std::int32_t first_row_limit = has_rows ? w.row_limit[item.row_begin] : 0;
    for (int kv_head = 0; kv_head < kv_heads; kv_head += heads) {
      const auto head_count = static_cast<std::uint16_t>(std::min(heads, kv_heads - kv_head));
      for (std::uint32_t m = 0; m < query_rows; m += tile_rows) {
        tiles.push_back(WorkTile{item, first_run, static_cast<std::uint16_t>(kv_head), head_count, m, first_row_batch, first_row_limit});
      }
    }
  }

  // The mma.sync tiles' positions and rows: for their grid alone (persistent or one CTA per tile),
  // beside the wgmma tiles (the SM partition and the claims), and for a replayed launch's first claims.
  mma_sync_tile_positions_.clear();
  mma_sync_tile_rows_.clear();
  for (const WorkTile& tile : mma_sync_tiles_) {
    mma_sync_tile_positions_.push_back(tile.item.tokens * tile.kv_head_count);
    const auto rows = std::min<std::int64_t>(kernels::kMmaSyncTileRows, query_rows_of(tile.item) - tile.m_begin);
    mma_sync_tile_rows_.push_back(static_cast<std::int32_t>(rows * tile.kv_head_count));
  }
  const int ctas_per_sm = kernels::mma_sync_ctas_per_sm(head_dim_);
  const bool round_robin_even =
      cost_model::round_robin_is_even(mma_sync_tile_positions_, head_dim_, std::int64_t{kernels::multiprocessor_count()} * ctas_per_sm);
  // Where tiles of both kinds run, the wgmma tiles may get part of the SMs and the mma.sync tiles the
  // rest, beside them from the start (experiments 95 and 99).
  wgmma_tile_positions_.clear();
  for (const WorkTile& tile : wgmma_tiles_) wgmma_tile_positions_.push_back(tile.item.tokens);
  const int sms = kernels::multiprocessor_count();
  const auto wgmma_sms =
      kernels::wgmma_head_dim(head_dim_)
          ? static_cast<std::uint32_t>(cost_model::wgmma_sms(wgmma_tile_positions_, mma_sync_tile_positions_, mma_sync_tile_rows_, head_dim_, sms, ctas_per_sm,
                                                                      kernels::memory_bytes_per_micro()))
          : 0u;
  // First tiles claimed: replayed launches only, whose grid is a CTA per slot (the workspace's room
  // holds more tiles), and not where the SMs are split (the claim deals a slot to every CTA of the
  // grid). Later tiles claimed beside wgmma tiles (and the first ones too, where no slot claim gives
  // them: experiment 100): by a replayed launch always (its grid is persistent either way, and a
  // static deal gives the CTAs placed as the wgmma CTAs end a full share); by an eager call where the
  // SMs are split or claims pay (cost_model::claims_later_tiles; its other grid is one CTA per tile).
  const bool beside_wgmma = !wgmma_tiles_.empty() && !mma_sync_tiles_.empty() && kernels::wgmma_head_dim(head_dim_);
  const bool eager_claims_later =
      cost_model::claims_later_tiles(mma_sync_tile_positions_, static_cast<std::int64_t>(wgmma_tiles_.size()), sms, ctas_per_sm);
  const std::uint32_t claims =
      (wgmma_sms == 0 && cost_model::claims_first_tiles(mma_sync_tile_positions_, head_dim_, sms, ctas_per_sm) ? kernels::kClaimFirstTiles : 0u) |
      (beside_wgmma ? kernels::kClaimLaterTiles : 0u);

  const std::size_t state_heads = static_cast<std::size_t>(w.num_states) * static_cast<std::size_t>(w.queries_per_seq * q_heads_);
  const Capacity need{wgmma_tiles_.size(), mma_sync_tiles_.size(), w.runs.size(), w.num_rows(), w.merge_states.size(), state_heads};
  const bool asynchronous = upload == Upload::asynchronous;
  if (asynchronous && staged_copied_ == nullptr) {
    cudaEvent_t event = nullptr;
    CHUNKTREE_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    staged_copied_.reset(event);
  }
  if (staged_copied_ != nullptr) CHUNKTREE_CUDA_CHECK(cudaEventSynchronize(staged_copied_.get()));  // the last load's copy has left the staging
  if (!capacity_.holds(need) || (asynchronous && !replayable_)) {
    if (captured_) {
      throw Error(ErrorCode::capacity_exhausted, "cuda backend: this plan needs " + describe(need) +
                                                     "; the workspace that a CUDA graph captured holds " + describe(capacity_) +
                                                     ". Capture again with a new DevicePlan or PagedAttention (Python: CacheAttention, "
                                                     "PagedAttention) given a plan this large first (it keeps room for plans up to " +
                                                     std::to_string(kRoomFactor) + "x its first)");
    }
    // Everything new is made before anything old goes, so that a failed allocation changes nothing.
    const Capacity capacity = asynchronous ? largest(capacity_, with_room(need)) : need;
    auto layout = std::make_unique<Layout>(capacity, head_dim_, asynchronous);
    cuda_memory::DeviceAllocation memory(layout->end);
    cuda_memory::PinnedAllocation pinned(asynchronous ? layout->tables_end : 0);
    capacity_ = capacity;
    layout_ = std::move(layout);
    memory_ = std::move(memory);
    pinned_ = std::move(pinned);
    replayable_ = asynchronous;
    // The mma.sync CTAs' claims start from zero (each launch's last claim zeroes them again).
    CHUNKTREE_CUDA_CHECK(cudaMemsetAsync(section<SlotClaims>(layout_->slot_claims), 0, sizeof(SlotClaims), stream));
  }

  // The tables in one transfer. One-shot: staged in the workspace's own layout (exact, so dense) and
  // copied whole. Asynchronous: each section's used part packed in pinned memory (the unused room
  // is not moved), copied to the staging section, and scattered to the sections by a kernel.
  const Layout& at = *layout_;
  const bool one_state_per_row = w.one_state_per_row();
  const LiveCounts counts{static_cast<std::uint32_t>(wgmma_tiles_.size()),
                          static_cast<std::uint32_t>(mma_sync_tiles_.size()),
                          one_state_per_row ? 0u : w.num_rows(),
                          claims,
                          one_state_per_row ? 1u : 0u,
                          wgmma_sms,
                          partitioned_mma_sync_ctas(wgmma_sms, head_dim_)};
  struct Table {
    std::size_t section;
    const void* values;
    std::size_t bytes;
  };
  const auto table = [](std::size_t section, const auto& values) { return Table{section, values.data(), values.size() * sizeof(values[0])}; };
  const Table tables[] = {{at.counts, &counts, sizeof(counts)},
                          table(at.wgmma_tiles, wgmma_tiles_),
                          table(at.mma_sync_tiles, mma_sync_tiles_),
                          table(at.row_to_batch, w.row_to_batch),
                          table(at.row_limit, w.row_limit),
                          table(at.merge_begin, w.merge_begin),
                          table(at.merge_states, w.merge_states),
                          table(at.runs, w.runs)};
  static_assert(std::size(tables) <= kernels::ScatterArgs::kMaxCopies);
  auto* device = static_cast<std::byte*>(memory_.data());
  if (asynchronous) {
    auto* staged = static_cast<std::byte*>(pinned_.data());
    kernels::ScatterArgs scatter{device, {}, 0};
    std::size_t packed = 0;
    for (const Table& t : tables) {
      if (t.bytes == 0) continue;
      std::memcpy(staged + packed, t.values, t.bytes);
      const std::size_t rounded = (t.bytes + 15) / 16 * 16;  // within the section: place() rounds sections up to 16 bytes
      scatter.copies[scatter.count++] = kernels::SectionCopy{at.staging + packed, t.section, rounded};
      packed += rounded;
    }
    CHUNKTREE_CUDA_CHECK(cudaMemcpyAsync(device + at.staging, staged, packed, cudaMemcpyHostToDevice, stream));
    kernels::launch_scatter_sections(scatter, stream);
    CHUNKTREE_CUDA_CHECK(cudaEventRecord(staged_copied_.get(), stream));
  } else {
    std::vector<std::byte> staged(at.tables_end);
    for (const Table& t : tables) {
      if (t.bytes > 0) std::memcpy(staged.data() + t.section, t.values, t.bytes);
    }
    CHUNKTREE_CUDA_CHECK(cudaMemcpyAsync(device, staged.data(), staged.size(), cudaMemcpyHostToDevice, stream));
    CHUNKTREE_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  queries_ = w.queries_per_seq;
  rows_ = w.num_rows();
  num_wgmma_tiles_ = counts.wgmma_tiles;
  num_mma_sync_tiles_ = counts.mma_sync_tiles;
  mma_sync_round_robin_even_ = round_robin_even;
  wgmma_sms_ = wgmma_sms;
  mma_sync_claims_later_ = eager_claims_later;
  state_heads_ = state_heads;
  one_state_per_row_ = one_state_per_row;
  longest_row_states_ = w.longest_row_states();
}

const LiveCounts* DeviceWork::live_counts() const { return section<const LiveCounts>(layout_->counts); }

void DeviceWork::attend(const KvStorage& kv, DType dtype, const void* q, float scale, const TensorView& out,
                        const TensorView& lse, std::int64_t buffer_tokens, cudaStream_t stream) const {
  // Captured launches of a workspace loaded once are the eager ones: they replay its one plan.
  const bool captured = capturing(stream);
  const bool replayable = captured && replayable_;
  if (replayable || rows_ > 0) {
    PartialArgs args = partial_args(kv, q, scale);
    // Where every row reads one item its state is the output, with nothing to merge. A replay serves
    // later plans too: its kernels read which kind the live plan is, and its merge the rows to merge
    // (none for this kind; experiment 69).
    if (replayable || one_state_per_row_) {
      args.out = out.data;
      args.out_lse = static_cast<float*>(lse.data);
      args.out_dtype = out.dtype;
      args.live_writes_output = replayable ? &live_counts()->writes_output : nullptr;
    }
    const bool states_kernel_launched = compute_states(args, dtype, replayable, stream);
    if (replayable || !one_state_per_row_) merge(out, lse, replayable, states_kernel_launched, stream);
    write_traces(stream);
  }
  if (!captured) return;
  if (replayable) captured_tokens_ = captured_ ? std::min(captured_tokens_, buffer_tokens) : buffer_tokens;
  captured_ = true;  // only once the launches are in the graph: a refused call changes nothing
}

PartialStates DeviceWork::states(const KvStorage& kv, DType dtype, const void* q, float scale) const {
  if (rows_ > 0) {
    PartialArgs args = partial_args(kv, q, scale);
    args.state_max = section<float>(layout_->state_max);
    compute_states(args, dtype, false, nullptr);
    write_traces(nullptr);
  }
  CHUNKTREE_CUDA_CHECK(cudaDeviceSynchronize());
  PartialStates states;
  states.num_q_heads = q_heads_;
  states.head_dim = head_dim_;
  states.o.resize(state_heads_ * static_cast<std::size_t>(head_dim_));
  states.lse.resize(state_heads_);
  states.max.resize(state_heads_);
  if (state_heads_ == 0) return states;
  cuda_memory::copy_to_host(states.o.data(), section<float>(layout_->state_o), states.o.size() * sizeof(float));
  cuda_memory::copy_to_host(states.lse.data(), section<float>(layout_->state_lse), states.lse.size() * sizeof(float));
  cuda_memory::copy_to_host(states.max.data(), section<float>(layout_->state_max), states.max.size() * sizeof(float));
  return states;
}

// The kernels' arguments for the loaded work over the K and V storage `kv`.
PartialArgs DeviceWork::partial_args(const KvStorage& kv, const void* q, float scale) const {
  if (reinterpret_cast<std::uintptr_t>(q) % 16 != 0) {
    throw Error(ErrorCode::invalid_argument,
                "cuda backend: q must be 16-byte aligned (the kernels copy rows in 16-byte pieces); pass the start of an allocation");
  }
  const Layout& at = *layout_;
  PartialArgs args{};
  args.runs = section<const work::KvRun>(at.runs);
  args.row_to_batch = section<const std::uint32_t>(at.row_to_batch);
  args.row_limit = section<const std::int32_t>(at.row_limit);
  args.q = q;
  args.k_base = kv.k_base;
  args.v_base = kv.v_base;
  args.token_stride = kv.token_stride;
  args.page_stride = kv.page_stride;
  args.page_tokens = kv.page_tokens;
  args.state_o = section<float>(at.state_o);
  args.state_lse = section<float>(at.state_lse);
  args.q_heads = q_heads_;
  args.group = group_;
  args.queries = queries_;
  args.scale_log2 = scale * 1.4426950408889634f;
  return args;
}

// Both kernels' launches: the wgmma tiles first on the caller's stream and the mma.sync tiles on
// the second stream when tiles of both kinds run, so that the wgmma CTAs, which each need an SM to
// themselves, take their SMs before the mma.sync CTAs fill every SM (experiment 74: launched the
// other way, an eager call's mma.sync CTAs took all SMs first and the wgmma CTAs waited for their
// queue to drain), or, where the mma.sync CTAs claim their tiles after one wave of wgmma CTAs, chained
// to the wgmma kernel on the caller's stream, which makes that order certain (experiment 104). A
// replayable launch runs each kernel the workspace has room for, persistent, counting its tiles in
// the workspace. True when a states kernel was launched, so that the merge can be chained to the last
// one on `stream` (after the second stream's join too: experiment 70).
bool DeviceWork::compute_states(PartialArgs args, DType dtype, bool replayable, cudaStream_t stream) const {
  const bool bf16 = dtype == DType::bf16;
  const bool wgmma = (replayable ? capacity_.wgmma_tiles > 0 : num_wgmma_tiles_ > 0) && kernels::wgmma_head_dim(head_dim_);
  const bool mma_sync = replayable ? capacity_.mma_sync_tiles > 0 : num_mma_sync_tiles_ > 0;
  const bool both = wgmma && mma_sync;
  const bool partitioned = both && !replayable && wgmma_sms_ > 0;  // an eager call's: a replayed one's CTAs read the live plan's
  // Beside the wgmma tiles, the mma.sync CTAs claim their tiles where the SMs are split (experiment 95:
  // on the SMs that the wgmma tiles leave) or claims pay (experiments 96, 98 and 100).
  const bool claims_later = both && (mma_sync_claims_later_ || partitioned);
  // An eager call whose claiming mma.sync grid follows one wave of wgmma CTAs chains it to them on
  // one stream (experiment 104): forked, that persistent grid could take every SM first, and the
  // wgmma CTAs start only once the tiles run out (experiment 103's trace of gqa-llama3 b64_p2k).
  const std::uint32_t wgmma_ctas = partitioned ? wgmma_sms_ : num_wgmma_tiles_;
  const bool chained = claims_later && !replayable && wgmma_ctas <= static_cast<std::uint32_t>(kernels::multiprocessor_count());
  const bool forked = both && !chained;
  args.mma_sync_chained = chained ? 1u : 0u;
#if CHUNKTREE_TILE_TRACE
  std::optional<EagerStampsOff> stamps_off;  // before the fork, so that both streams' launches follow it
  if (std::getenv("CHUNKTREE_TILE_TRACE_REPLAYED") != nullptr && !capturing(stream)) stamps_off.emplace(stream);
#endif
  if (forked && side_ == nullptr) side_ = std::make_unique<ForkedStream>();
  const cudaStream_t mma_sync_stream = forked ? side_->fork(stream) : stream;  // forked before the wgmma launch: not after it
  if (wgmma) {
    args.tiles = section<const WorkTile>(layout_->wgmma_tiles);
    args.num_tiles = replayable ? static_cast<std::uint32_t>(capacity_.wgmma_tiles) : num_wgmma_tiles_;
    args.live_num_tiles = replayable ? &live_counts()->wgmma_tiles : nullptr;
    args.live_ctas = replayable ? &live_counts()->wgmma_ctas : nullptr;
    kernels::launch_wgmma_states(bf16, head_dim_, args, replayable || !mma_sync || partitioned ? Grid::persistent : Grid::one_per_tile, stream,
                                 partitioned ? wgmma_sms_ : 0);
  }
  if (mma_sync) {
    args.tiles = section<const WorkTile>(layout_->mma_sync_tiles);
    args.num_tiles = replayable ? static_cast<std::uint32_t>(capacity_.mma_sync_tiles) : num_mma_sync_tiles_;
    args.live_num_tiles = replayable ? &live_counts()->mma_sync_tiles : nullptr;
    args.slot_claims = section<SlotClaims>(layout_->slot_claims);
    args.claims = claims_later ? kernels::kClaimLaterTiles : 0u;
    args.live_claims = replayable ? &live_counts()->mma_sync_claims : nullptr;
    args.live_ctas = replayable ? &live_counts()->mma_sync_ctas : nullptr;
    // A replayed launch serves later counts, so it is persistent; alone, persistent where its round
    // robin ends evenly (experiment 65); beside the wgmma kernel, persistent where its tiles are
    // claimed, else one CTA per tile (experiment 12d).
    const Grid grid = replayable || claims_later || (!both && mma_sync_round_robin_even_) ? Grid::persistent : Grid::one_per_tile;
    kernels::launch_mma_sync_states(bf16, head_dim_, args, grid, mma_sync_stream, partitioned ? partitioned_mma_sync_ctas(wgmma_sms_, head_dim_) : 0);
  }
  if (forked) side_->join(stream);
  return wgmma || mma_sync;
}

// Each row's states merged per query token into out (and lse), in the caller's order; chained to
// the states kernel before it on `stream`. After the second stream's join it is chained to the
// wgmma kernel: eagerly the join's event orders it after the mma.sync kernel in full; a captured
// graph may make that edge programmatic too. Either way the merge reads no state before its wait
// for the previous kernel, which returns once every kernel it depends on has finished and its
// writes are visible (experiment 70). Chained to an mma.sync kernel that is chained to the wgmma
// kernel, it waits for the mma.sync kernel, whose last CTA ends no sooner than the wgmma kernel
// (experiment 104).
void DeviceWork::merge(const TensorView& out, const TensorView& lse, bool replayable, bool after_states_kernel,
                       cudaStream_t stream) const {
  const Layout& at = *layout_;
  kernels::RowMergeArgs args{};
  args.merge_begin = section<const std::uint32_t>(at.merge_begin);
  args.merge_states = section<const std::uint32_t>(at.merge_states);
  args.row_to_batch = section<const std::uint32_t>(at.row_to_batch);
  args.state_o = section<const float>(at.state_o);
  args.state_lse = section<const float>(at.state_lse);
  args.out = out.data;
  args.lse = static_cast<float*>(lse.data);
  args.q_heads = q_heads_;
  args.queries = queries_;
  args.rows = replayable ? static_cast<std::uint32_t>(capacity_.rows) : rows_;
  args.live_rows = replayable ? &live_counts()->rows : nullptr;
  args.longest_row_states = longest_row_states_;
  kernels::launch_merge_rows(args, head_dim_, out.dtype, replayable ? Grid::persistent : Grid::one_per_tile, stream,
                             after_states_kernel);
}

}  // namespace chunktree::cuda_work
