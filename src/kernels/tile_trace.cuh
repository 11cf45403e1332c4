// Per-tile timelines of the mma.sync kernel, for studying where a tile's time goes (the traces of
// docs/KERNEL_NOTES.md, experiment 13). Built with the CMake option CHUNKTREE_TILE_TRACE, the
// kernel stamps %globaltimer at each tile's events into a device table, and every eager launch
// (not one being captured into a graph) writes the table to the CSV file named by the environment
// variable CHUNKTREE_TILE_TRACE; bench/tile_trace.py reads it. Without the option the stamps are
// empty and nothing is written: never measure speed with it on.
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
// first stage has landed, the consumers are done with its stages, its states are stored.
enum Event : int { taken, handed, first_stage, stages_done, stored, kEvents };
constexpr std::uint32_t kMaxTiles = 1u << 16;  // tiles past this are not traced

#if CHUNKTREE_TILE_TRACE

struct TileRow {
  unsigned long long at[kEvents];
  std::uint32_t sm;
  std::uint32_t cta;
};

// One table per translation unit: only the mma.sync kernel's includes this.
__device__ TileRow rows[kMaxTiles];

// Called by one thread per event.
__device__ inline void stamp(std::uint32_t tile, Event event) {
  if (tile >= kMaxTiles) return;
  rows[tile].at[event] = cuda::ptx::get_sreg_globaltimer();
  if (event == stored) {
    rows[tile].sm = cuda::ptx::get_sreg_smid();
    rows[tile].cta = blockIdx.x;
  }
}

// After a launch: waits for it and writes its table (tile, the events in ns, SM, CTA) to the file
// CHUNKTREE_TILE_TRACE names, unless the stream is being captured.
inline void write(cudaStream_t stream, std::uint32_t num_tiles) {
  const char* path = std::getenv("CHUNKTREE_TILE_TRACE");
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  CHUNKTREE_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (path == nullptr || capturing != cudaStreamCaptureStatusNone) return;
  std::vector<TileRow> table(std::min(num_tiles, kMaxTiles));
  CHUNKTREE_CUDA_CHECK(cudaStreamSynchronize(stream));
  CHUNKTREE_CUDA_CHECK(cudaMemcpyFromSymbol(table.data(), rows, table.size() * sizeof(TileRow)));
  FILE* file = std::fopen(path, "w");
  if (file == nullptr) throw Error(ErrorCode::invalid_argument, std::string("CHUNKTREE_TILE_TRACE: cannot write ") + path);
  std::fprintf(file, "tile,taken,handed,first_stage,stages_done,stored,sm,cta\n");
  for (std::size_t t = 0; t < table.size(); ++t) {
    std::fprintf(file, "%zu", t);
    for (unsigned long long at : table[t].at) std::fprintf(file, ",%llu", at);
    std::fprintf(file, ",%u,%u\n", table[t].sm, table[t].cta);
  }
  std::fclose(file);
}

#else

__device__ inline void stamp(std::uint32_t, Event) {}
inline void write(cudaStream_t, std::uint32_t) {}

#endif

}  // namespace chunktree::kernels::tile_trace
