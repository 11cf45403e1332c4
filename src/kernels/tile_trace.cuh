// Per-tile timelines of the partial-state kernels, for studying where a tile's time goes (the traces
// of docs/KERNEL_NOTES.md, experiments 13 and 43). Built with the CMake option CHUNKTREE_TILE_TRACE,
// each kernel stamps %globaltimer at each tile's events into a device table of its own (one per
// translation unit). After an eager call (not one being captured into a graph) has launched both
// kernels, the CUDA backend waits for them and each writes its table to the CSV file named by the
// environment variable CHUNKTREE_TILE_TRACE, the wgmma kernel's with ".wgmma" appended (only the
// n-th eager call's, when CHUNKTREE_TILE_TRACE_CALL is n); waiting only then keeps the two kernels
// running side by side as they do untraced. bench/tile_trace.py
// reads the files on one clock. Without the option the stamps are empty and nothing is written:
// never measure speed with it on.
// Replayed graphs run other grids than eager calls (sized for later plans, beside an mma.sync
// kernel with nothing to do): with CHUNKTREE_TILE_TRACE_REPLAYED set, eager launches do not stamp,
// so the tables an eager call writes are the last replay's (session 45: a replay's tiles timed).
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

#if CHUNKTREE_TILE_TRACE

struct TileRow {
  unsigned long long at[kEvents];
  std::uint32_t sm;
  std::uint32_t cta;
};

// Internal linkage: each kernel's translation unit has its own table (and its own write()).
namespace {

__device__ TileRow rows[kMaxTiles];
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

std::uint32_t launched_tiles = 0;  // of this kernel's last eager launch not yet written

// At a launch: remembers how many tiles to write, unless the stream is being captured.
inline void note_launch(cudaStream_t stream, std::uint32_t num_tiles) {
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  CHUNKTREE_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing == cudaStreamCaptureStatusNone) launched_tiles = num_tiles;
}

// Whether the launches queued on `stream` after this stamp their tiles.
inline void set_stamping(cudaStream_t stream, bool on) {
  CHUNKTREE_CUDA_CHECK(cudaMemcpyToSymbolAsync(stamping, &on, sizeof on, 0, cudaMemcpyHostToDevice, stream));
}

// Once the call's launches are queued on `stream`: if `keep`, waits for them and writes the table
// of this kernel's last launch (tile, the events in ns, SM, CTA) to the file CHUNKTREE_TILE_TRACE
// names, with `suffix` appended; either way the launch is forgotten.
inline void write(cudaStream_t stream, const char* suffix, bool keep) {
  const std::uint32_t tiles = launched_tiles;
  launched_tiles = 0;
  const char* variable = std::getenv("CHUNKTREE_TILE_TRACE");
  if (!keep || variable == nullptr || tiles == 0) return;
  const std::string path = std::string(variable) + suffix;
  std::vector<TileRow> table(std::min(tiles, kMaxTiles));
  CHUNKTREE_CUDA_CHECK(cudaStreamSynchronize(stream));
  CHUNKTREE_CUDA_CHECK(cudaMemcpyFromSymbol(table.data(), rows, table.size() * sizeof(TileRow)));
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) throw Error(ErrorCode::invalid_argument, "CHUNKTREE_TILE_TRACE: cannot write " + path);
  std::fprintf(file, "tile,taken,handed,first_stage,stages_done,combined,stored,sm,cta\n");
  for (std::size_t t = 0; t < table.size(); ++t) {
    std::fprintf(file, "%zu", t);
    for (unsigned long long at : table[t].at) std::fprintf(file, ",%llu", at);
    std::fprintf(file, ",%u,%u\n", table[t].sm, table[t].cta);
  }
  std::fclose(file);
}

}  // namespace

#else

__device__ inline void begin() {}
__device__ inline void stamp(std::uint32_t, Event) {}
inline void note_launch(cudaStream_t, std::uint32_t) {}

#endif

}  // namespace chunktree::kernels::tile_trace
