// Measuring on the GPU for the benchmark: the card's two ceilings, random device data, a cold
// L2 between runs, and timing with CUDA events (graph-captured where capture works).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chunktree/types.hpp"
#include "harness/gpu_buffer.hpp"

namespace chunktree::tools {

struct CardInfo {
  std::string name;
  std::string driver;  // the kernel module's version, e.g. 580.159.04
  int multiprocessors = 0;
  std::int64_t l2_bytes = 0;
};
CardInfo card_info();

struct Ceilings {
  double hbm_bytes_per_s = 0.0;   // the fastest of six ways to read 4 GiB once (gpu_measure.cu), medians of 30
  std::vector<double> hbm_reads;  // all six, in measuring order: a low one shows which way reads low
  double bf16_flops_per_s = 0.0;  // cuBLAS bf16 GEMM 8192³ with fp32 accumulation, median of 10 after one
};
Ceilings measure_ceilings();

// What the smallest calls cost under time_on_gpu's method (cold L2, graph replay): one kernel,
// and two dependent kernels, of one CTA each that read 16 bytes and write 16. A decode call
// made of that many launches cannot take less.
struct CallFloors {
  double one_launch_us = 0.0;
  double two_launches_us = 0.0;
};
CallFloors measure_call_floors(bool cold_l2, int settle_ms);

// Reads `bytes` (rounded up to 16) of device memory from `data` once with the read kernel that
// sets the HBM ceiling (eight 16-byte loads in flight a thread, two 1024-thread blocks an SM), on
// `stream`, XOR-ing what it reads into *sink only if that is a set value: a plain stream of the
// bytes, for a case's read reference (bench --read-reference).
void launch_hbm_read(const void* data, std::int64_t bytes, unsigned* sink, int multiprocessors, void* stream);

// Fills `count` elements of device memory with N(0,1)-like values in bf16 or f16 (never zeros).
void fill_random(void* device_data, DType dtype, std::int64_t count, std::uint64_t seed);

struct Timing {
  std::vector<double> microseconds;  // one per repeat
  bool graph = false;                // replays of a captured CUDA graph
};

// Times run(stream): warm-ups first, then each repeat between CUDA events; with cold_l2, a
// write over twice the L2 before each repeat (outside the events). Tries to capture run into
// a CUDA graph and time its replays; falls back to plain launches when capture fails. The card
// idles settle_ms before the timed repeats: the H200 holds 700 W by lowering its SM clock, and
// the limiter averages power over about a second, so without the pause a row that follows a
// power-hungry one starts at a capped clock (docs/KERNEL_NOTES.md, p32k_b256_s0).
Timing time_on_gpu(const std::function<void(void* stream)>& run, int warmups, int repeats, bool cold_l2, int settle_ms);

}  // namespace chunktree::tools
