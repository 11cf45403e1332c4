// The seed project's "sequence-first" test files (docs/FORMATS.md, "Sequence-first format"):
// every query reads the same chunks, the last one possibly cut; the file holds the normalised
// output and the states of the first (shared) chunks, which the check merges with the states it
// computes for the others.
#pragma once

#include <string>
#include <vector>

#include "harness/seed_common.hpp"
#include "harness/seed_format.hpp"

namespace chunktree::harness {

struct SeqFirstFile {
  SeedShape shape;        // S query rows, H heads, C chunks
  int seq_tokens = 0;     // tokens every row reads: 64·(C − 1) < seq_tokens ≤ 64·C
  int shared_chunks = 0;  // N ≤ C: the first N chunks' states are in the file
  std::vector<float> q;   // [S, H, 128]
  ChunkLines k;           // C × [H, 64, 128] (a cut last chunk's tail is written but not read)
  ChunkLines v;           // C × [H, 64, 128]
  std::vector<float> output;  // [S, H, 128]: the normalised attention over seq_tokens tokens
  SeedOutputs shared;         // N × maxs [S, H], sums [S, H], attns [S, H, 128] (rows sequence-major)
};

// One file of a generated grid.
struct SeqFirstCase {
  std::string pattern;  // randn, small, uniform, large or positive
  SeedShape shape;
  int shared_chunks = 0;
  int seq_tokens = 0;
};

// Throws chunktree::Error (code format) naming the file and line when the file is malformed.
SeqFirstFile read_seq_first_file(const std::string& path);
void write_seq_first_file(const std::string& path, const SeqFirstFile& file);

// "seqfirst_{pattern}_s{S}_h{H}_c{C}_n{N}_t{seq_tokens}.txt"
std::string seq_first_file_name(const SeqFirstCase& seq_case);
// Every value a file of this case holds, as a measure of how long it takes to write or check.
double seq_first_file_values(const SeqFirstCase& seq_case);
// The quick grid (64 files) or the full one (2800 files), in a fixed order.
std::vector<SeqFirstCase> seq_first_grid(bool full);
// bf16 inputs of the case's pattern seeded by the file name, output and shared states in fp64.
SeqFirstFile generate_seq_first_file(const SeqFirstCase& seq_case);

// Sets the file's output and shared states from its inputs, in fp64 (rounded to fp32).
void set_reference_values(SeqFirstFile& file);
// Every chunk's state of every row through the library (lines sequence-major, like the file's).
SeedOutputs seq_first_chunk_states(const SeqFirstFile& file, Backend backend = Backend::cpu, int threads = 0);
// The output merged, through chunktree::merge_states, from `shared` (the first N chunks) and
// `computed` (chunks N..C−1; its first N lines are not read).
std::vector<float> merged_output(const SeqFirstFile& file, const SeedOutputs& shared, const SeedOutputs& computed);
// Compares the merge of `expected`'s shared states with `computed`, and the computed shared
// states, with `expected`'s values.
CheckResult compare_seq_first(const SeedOutputs& computed, const SeqFirstFile& expected, const CheckOptions& options);

// The check of a sequence-first file whose header was read (check_seed_file dispatches here).
CheckResult check_seq_first(LineReader& reader, const SeedHeader& header, const CheckOptions& options, DType cache_dtype);

}  // namespace chunktree::harness
