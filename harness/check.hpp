// Checking one test file (seed or tree format) against a backend.
#pragma once

#include <cstdint>
#include <string>

#include "harness/backend.hpp"

namespace chunktree::harness {

struct CheckOptions {
  Backend backend = Backend::cpu;
  bool strict = false;
  bool verbose = false;
  std::string dump_path;  // where to write the file with the computed values; empty: no dump
  int threads = 0;        // backend threads for one file (0: one per hardware thread)
};

struct CheckResult {
  bool passed = false;
  std::int64_t fails = 0;   // failed comparisons (elements, or norms under --strict)
  std::int64_t total = 0;   // comparisons made
  double max_diff = 0.0;    // largest absolute element difference
  std::string details;      // extra lines printed with -v (and lines about rounded inputs)
  std::string summary_note; // appended to the SUMMARY line: what the verdict was judged against
};

// Each throws chunktree::Error (code format) naming file and line for a malformed file.
CheckResult check_seed_file(const std::string& path, const CheckOptions& options);  // seed_format.cpp
CheckResult check_tree_file(const std::string& path, const CheckOptions& options);  // tree_check.cpp

// True when the file starts like a tree-format file (docs/FORMATS.md).
bool is_tree_file(const std::string& path);  // tree_format.cpp

}  // namespace chunktree::harness
