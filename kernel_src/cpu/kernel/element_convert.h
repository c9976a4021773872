// Scalar conversions between float32 and the 16-bit input types, round-to-nearest-even, exact
// for subnormals, inf and NaN (no compiler _Float16 support needed).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernel/attention_problem.h"

namespace blitz::cpu {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float bf16_to_float(uint16_t h) { return bits_float((uint32_t)h << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = (float)mantissa * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline uint16_t float_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) return (uint16_t)(sign | (magnitude > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (magnitude >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (magnitude < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5 puts the fp16 ulp (2^-24) at the float's
    // last mantissa bit, so the FPU's own rounding is round-to-nearest-even.
    const float shifted = bits_float(magnitude) + 0.5f;
    return (uint16_t)(sign | (float_bits(shifted) - 0x3f000000u));
  }
  const uint32_t odd = (magnitude >> 13) & 1u;
  magnitude += 0xc8000fffu + odd;  // exponent rebias (127 -> 15) plus the rounding bias
  return (uint16_t)(sign | (magnitude >> 13));
}

inline size_t element_bytes(ElementType t) { return t == ElementType::kFloat32 ? 4 : 2; }

inline float load_element(const void *base, int64_t index, ElementType t) {
  switch (t) {
    case ElementType::kFloat32: return static_cast<const float *>(base)[index];
    case ElementType::kFloat16: return fp16_to_float(static_cast<const uint16_t *>(base)[index]);
    case ElementType::kBFloat16: return bf16_to_float(static_cast<const uint16_t *>(base)[index]);
  }
  return 0.0f;
}

inline void store_element(void *base, int64_t index, ElementType t, float value) {
  switch (t) {
    case ElementType::kFloat32: static_cast<float *>(base)[index] = value; break;
    case ElementType::kFloat16: static_cast<uint16_t *>(base)[index] = float_to_fp16(value); break;
    case ElementType::kBFloat16: static_cast<uint16_t *>(base)[index] = float_to_bf16(value); break;
  }
}

// A float32 value rounded to the input dtype and back (P before the P*V product, as the NPU).
inline float round_to(ElementType t, float value) {
  switch (t) {
    case ElementType::kFloat32: return value;
    case ElementType::kFloat16: return fp16_to_float(float_to_fp16(value));
    case ElementType::kBFloat16: return bf16_to_float(float_to_bf16(value));
  }
  return value;
}

}  // namespace blitz::cpu
