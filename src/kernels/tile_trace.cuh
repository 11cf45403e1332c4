// Per-tile timelines of the partial-state kernels, for studying where a tile's time goes (the traces
// of docs/KERNEL_NOTES.md, experiments 13 and 43). Built with the CMake option CHUNKTREE_TILE_TRACE,
// each kernel stamps %globaltimer at each tile's events into a device table of its own (one per
// translation unit), and at each CTA's own moments (it entered the kernel, it left) into a second
// one; the merge kernel stamps each warp's moments (entered, its wait for the states kernel returned,
// left), so that one call's launches line up on one clock (session 67). After an eager call (not
// one being captured into a graph) has launched its kernels, the CUDA backend waits for them and
// each kernel writes its tables to the files named by the environment variable CHUNKTREE_TILE_TRACE:
// the mma.sync kernel's tiles to that name, the wgmma kernel's with ".wgmma" appended, the merge's
// warps with ".merge", and each kernel's CTAs (merge: warps) with ".units" appended to its own name
// (only the n-th eager call's, when CHUNKTREE_TILE_TRACE_CALL is n); waiting only then keeps the
// kernels running side by side as they do untraced. bench/tile_trace.py reads the files on one clock.
// Without the option the stamps are empty and nothing is written: never measure speed with it on.
// Replayed graphs run other grids than eager calls (sized for later plans, beside an mma.sync
// kernel with nothing to do): with CHUNKTREE_TILE_TRACE_REPLAYED set, eager launches of the states
// kernels do not stamp, so the tables an eager call writes are the last replay's (session 45: a
// replay's tiles timed); the merge is not traced then (its eager launch would stamp over the replay's).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#if CHUNKTREE_TILE_TRACE
#include <cuda/ptx>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "chunktree/types.hpp"

#include "runtime/check.cuh"
#endif

namespace chunktree::kernels::tile_trace {

// In a tile's order: the producer takes the tile, the consumers have its Q rows and header, its
// first stage has landed, the consumers are done with its stages, its rows' states are complete
// (the mma.sync warps' states parked for their combine; the wgmma rows' sums reduced), its states
// are stored.
enum Event : int { taken, handed, first_stage, stages_done, combined, stored, kEvents };
constexpr std::uint32_t kMaxTiles = 1u << 16;  // tiles past this are not traced

// A unit's moments outside the tiles: a states kernel's CTA (or a merge warp) entered the kernel, a
// chained kernel's wait for the kernel before it returned (the merge's; 0 where none), it left.
enum Moment : int { entered, waited, left, kMoments };
constexpr std::uint32_t kMaxUnits = 1u << 16;  // units past this are not traced

#if CHUNKTREE_TILE_TRACE

struct TileRow {
  unsigned long long at[kEvents];
  std::uint32_t sm;
  std::uint32_t cta;
};

struct UnitRow {
  unsigned long long at[kMoments];
  std::uint32_t sm;
};

// Internal linkage: each kernel's translation unit has its own table (and its own write()).
namespace {

__device__ TileRow rows[kMaxTiles];
__device__ UnitRow units[kMaxUnits];
__device__ bool stamping = true;  // off for eager launches while replays are traced (one flag for all streams)

// The flag as this CTA read it once, at its start (begin()): a stamp that loaded the global flag
// itself made its warp wait for that load, up to a memory round trip inside every traced phase
// (session 66).
__device__ inline bool& stamping_in_cta() {
  __shared__ bool on;
  return on;
}

// Every thread of a CTA, before the CTA's first __syncthreads.
__device__ inline void begin() {
  if (threadIdx.x == 0) stamping_in_cta() = stamping;
}

// Called by one thread per event, after begin()'s __syncthreads.
__device__ inline void stamp(std::uint32_t tile, Event event) {
  const unsigned long long now = cuda::ptx::get_sreg_globaltimer();
  if (tile >= kMaxTiles || !stamping_in_cta()) return;
  rows[tile].at[event] = now;
  if (event == stored) {
    rows[tile].sm = cuda::ptx::get_sreg_smid();
    rows[tile].cta = blockIdx.x;
  }
}

// A unit's clock, made at the kernel's first instruction by the thread that stamps the unit: the
// timer then, and the flag (loaded there, its value used only as the unit leaves, so that nothing
// waits for it).
class Clock {
 public:
  __device__ Clock() : entered_(cuda::ptx::get_sreg_globaltimer()), on_(stamping) {}
  // The first return of the unit's wait for the kernel before it.
  __device__ void waited() {
    if (waited_ == 0) waited_ = cuda::ptx::get_sreg_globaltimer();
  }
  __device__ void left(std::uint32_t unit) const {
    const unsigned long long now = cuda::ptx::get_sreg_globaltimer();
    if (unit >= kMaxUnits || !on_) return;
    units[unit] = UnitRow{{entered_, waited_, now}, cuda::ptx::get_sreg_smid()};
  }

 private:
  unsigned long long entered_;
  unsigned long long waited_ = 0;
  bool on_;
};

std::uint32_t launched_tiles = 0;  // of this kernel's last eager launch not yet written
std::uint32_t launched_units = 0;

// At a launch: remembers how many tiles and units to write, unless the stream is being captured.
inline void note_launch(cudaStream_t stream, std::uint32_t num_tiles, std::uint32_t num_units) {
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  CHUNKTREE_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return;
  launched_tiles = num_tiles;
  launched_units = num_units;
}

// Whether the launches queued on `stream` after this stamp their tiles.
inline void set_stamping(cudaStream_t stream, bool on) {
  CHUNKTREE_CUDA_CHECK(cudaMemcpyToSymbolAsync(stamping, &on, sizeof on, 0, cudaMemcpyHostToDevice, stream));
}

// The first `count` rows of a device table, copied from the device, to `path` as CSV: `header`, then
// per row its index and what `print` writes of it.
template <typename Row, std::size_t N, typename Print>
void write_rows(const Row (&symbol)[N], std::uint32_t count, const std::string& path, const char* header, Print print) {
  std::vector<Row> table(count);
  CHUNKTREE_CUDA_CHECK(cudaMemcpyFromSymbol(table.data(), symbol, count * sizeof(Row)));
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) throw Error(ErrorCode::invalid_argument, "CHUNKTREE_TILE_TRACE: cannot write " + path);
  std::fprintf(file, "%s\n", header);
  for (std::size_t i = 0; i < table.size(); ++i) {
    std::fprintf(file, "%zu", i);
    print(file, table[i]);
    std::fputc('\n', file);
  }
  std::fclose(file);
}

// Once the call's launches are queued on `stream`: if `keep`, waits for them and writes the tables
// of this kernel's last launch to the files CHUNKTREE_TILE_TRACE names with `suffix` appended: its
// tiles (tile, the events in ns, SM, CTA) there, its units (unit, the moments in ns, SM) with
// ".units" appended too, first removing both files, so that none is left from an earlier call. While
// replays are traced (CHUNKTREE_TILE_TRACE_REPLAYED) the units are not written: the tables are the
// last replay's, whose grid is not the eager launch's. Either way the launch is forgotten.
inline void write(cudaStream_t stream, const char* suffix, bool keep) {
  const std::uint32_t tiles = std::min(launched_tiles, kMaxTiles);
  const std::uint32_t unit_count = std::getenv("CHUNKTREE_TILE_TRACE_REPLAYED") == nullptr ? std::min(launched_units, kMaxUnits) : 0;
  launched_tiles = launched_units = 0;
  const char* variable = std::getenv("CHUNKTREE_TILE_TRACE");
  if (!keep || variable == nullptr) return;
  const std::string path = std::string(variable) + suffix;
  std::remove(path.c_str());
  std::remove((path + ".units").c_str());
  if (tiles + unit_count == 0) return;
  CHUNKTREE_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (tiles > 0) {
    write_rows(rows, tiles, path, "tile,taken,handed,first_stage,stages_done,combined,stored,sm,cta", [](FILE* file, const TileRow& row) {
      for (unsigned long long at : row.at) std::fprintf(file, ",%llu", at);
      std::fprintf(file, ",%u,%u", row.sm, row.cta);
    });
  }
  if (unit_count > 0) {
    write_rows(units, unit_count, path + ".units", "unit,entered,waited,left,sm", [](FILE* file, const UnitRow& row) {
      for (unsigned long long at : row.at) std::fprintf(file, ",%llu", at);
      std::fprintf(file, ",%u", row.sm);
    });
  }
}

}  // namespace

#else

__device__ inline void begin() {}
__device__ inline void stamp(std::uint32_t, Event) {}
struct Clock {
  __device__ void waited() {}
  __device__ void left(std::uint32_t) const {}
};
inline void note_launch(cudaStream_t, std::uint32_t, std::uint32_t) {}

#endif

}  // namespace chunktree::kernels::tile_trace
