// The attention shape a backend test runs, and the cache configuration for it.
#pragma once

#include <cstdint>
#include <ostream>

#include "chunktree/prefix_cache.hpp"

namespace chunktree::testing {

struct Shape {
  int q_heads;
  int kv_heads;
  int head_dim;
  int chunk;
  DType dtype;
};

inline std::ostream& operator<<(std::ostream& stream, const Shape& s) {
  return stream << "q_heads " << s.q_heads << " kv_heads " << s.kv_heads << " d " << s.head_dim << " chunk " << s.chunk << " "
                << to_string(s.dtype);
}

inline CacheConfig cache_config(const Shape& shape, Device device, std::int64_t capacity = 4096) {
  CacheConfig config;
  config.num_kv_heads = shape.kv_heads;
  config.head_dim = shape.head_dim;
  config.chunk_size = shape.chunk;
  config.dtype = shape.dtype;
  config.capacity_chunks = capacity;
  config.device = device;
  return config;
}

}  // namespace chunktree::testing
