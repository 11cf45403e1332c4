// Conversions between fp32 and the 16-bit storage types (round to nearest even),
// usable on the host and, when compiled by nvcc, on the device.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

#include "chunktree/types.hpp"

#if defined(__CUDACC__)
#define CHUNKTREE_HOST_DEVICE __host__ __device__
#else
#define CHUNKTREE_HOST_DEVICE
#endif

namespace chunktree {

CHUNKTREE_HOST_DEVICE inline std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

CHUNKTREE_HOST_DEVICE inline float bits_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

CHUNKTREE_HOST_DEVICE inline float bf16_to_float(std::uint16_t bits) {
  return bits_float(static_cast<std::uint32_t>(bits) << 16);
}

CHUNKTREE_HOST_DEVICE inline std::uint16_t float_to_bf16(float value) {
  std::uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

CHUNKTREE_HOST_DEVICE inline float fp16_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  std::uint32_t exponent = (half >> 10) & 0x1fu;
  std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1fu) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0) return bits_float(sign);
    // Subnormal: value = mantissa * 2^-24.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

CHUNKTREE_HOST_DEVICE inline std::uint16_t float_to_fp16(float value) {
  const std::uint32_t bits = float_bits(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to infinity
  if (magnitude < 0x38800000u) {
    // Result is subnormal or zero: round magnitude / 2^-24 to nearest even integer.
    const float scaled = bits_float(magnitude) * 16777216.0f;
    std::uint32_t integer = static_cast<std::uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(integer);
    if (rest > 0.5f || (rest == 0.5f && (integer & 1u))) ++integer;
    return static_cast<std::uint16_t>(sign | integer);
  }
  std::uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

// Value of element `index` of a buffer of `dtype`.
CHUNKTREE_HOST_DEVICE inline float load_element(const void* data, DType dtype, std::int64_t index) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(data)[index];
    case DType::bf16: return bf16_to_float(static_cast<const std::uint16_t*>(data)[index]);
    case DType::f16: return fp16_to_float(static_cast<const std::uint16_t*>(data)[index]);
  }
  return 0.0f;
}

CHUNKTREE_HOST_DEVICE inline void store_element(void* data, DType dtype, std::int64_t index, float value) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(data)[index] = value; return;
    case DType::bf16: static_cast<std::uint16_t*>(data)[index] = float_to_bf16(value); return;
    case DType::f16: static_cast<std::uint16_t*>(data)[index] = float_to_fp16(value); return;
  }
}

// The nearest value representable in `dtype`, as fp32.
inline float round_to(DType dtype, float value) {
  switch (dtype) {
    case DType::f32: return value;
    case DType::bf16: return bf16_to_float(float_to_bf16(value));
    case DType::f16: return fp16_to_float(float_to_fp16(value));
  }
  return value;
}

// The least magnitude that round_to(dtype, ·) takes to inf: halfway from the largest finite value
// to the next power of two, where the tie goes to the even code, inf (f16: 65504 and 65536; bf16:
// 0x1.fep127 and 2^128). fp32 has none below inf.
constexpr float first_magnitude_rounding_to_inf(DType dtype) {
  switch (dtype) {
    case DType::f16: return 65520.0f;
    case DType::bf16: return 0x1.ffp127f;
    case DType::f32: break;
  }
  return std::numeric_limits<float>::infinity();
}

}  // namespace chunktree
