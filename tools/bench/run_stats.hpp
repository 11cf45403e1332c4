// What every benchmark row carries: the UTC date of its run, and percentiles of its times.
#pragma once

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

namespace chunktree::tools {

inline std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%MZ", std::gmtime(&now));
  return text;
}

// The value at `fraction` (0: the smallest, 0.5: the median) of `values`.
inline double percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(fraction * static_cast<double>(values.size())))];
}

}  // namespace chunktree::tools
