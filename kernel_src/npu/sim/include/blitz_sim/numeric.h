// half and bfloat16_t as real 16-bit storage types, and the rounding of the Cast round modes
// (docs/zh/api/SIMD-API/基础API/Memory矢量计算/类型转换/Cast.md, "RoundMode取值说明"):
// CAST_RINT ties to even, CAST_ROUND ties away from zero, CAST_FLOOR / CAST_CEIL toward -inf /
// +inf, CAST_TRUNC toward zero, CAST_ODD round to odd (Von Neumann), CAST_NONE = CAST_RINT when
// the conversion loses precision. Conversions between formats go through double, which holds
// every float exactly, so each rounding happens once.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace blitz_sim {

enum class Rounding { Rint, Round, Floor, Ceil, Trunc, Odd };

// A binary floating-point format with `mant` stored mantissa bits and `ebits` exponent bits.
struct FloatFormat {
  int mant;
  int ebits;
  int bias() const { return (1 << (ebits - 1)) - 1; }
  int min_exp() const { return 1 - bias(); }      // smallest normal exponent
  int max_exp() const { return bias(); }          // largest normal exponent
  double max_finite() const { return std::ldexp(2.0 - std::ldexp(1.0, -mant), max_exp()); }
};
constexpr FloatFormat kHalfFormat{10, 5};
constexpr FloatFormat kBf16Format{7, 8};

// Rounds x to format f and returns the encoded bits (1 sign, ebits, mant).
inline uint32_t encode_rounded(double x, FloatFormat f, Rounding mode)
{
  const uint32_t sign = std::signbit(x) ? 1u : 0u;
  const uint32_t sign_bit = sign << (f.mant + f.ebits);
  const uint32_t exp_all = (1u << f.ebits) - 1;
  if (std::isnan(x)) return sign_bit | (exp_all << f.mant) | (1u << (f.mant - 1));  // quiet NaN
  const uint32_t inf_bits = sign_bit | (exp_all << f.mant);
  const uint32_t max_bits = sign_bit | ((exp_all - 1) << f.mant) | ((1u << f.mant) - 1);
  if (std::isinf(x)) return inf_bits;
  double a = std::fabs(x);
  if (a == 0.0) return sign_bit;
  int e2;
  std::frexp(a, &e2);
  int e = e2 - 1;  // a in [2^e, 2^(e+1))
  if (e < f.min_exp()) e = f.min_exp();
  const double ulp = std::ldexp(1.0, e - f.mant);
  const double q = a / ulp;  // exact: power-of-two scaling
  const double lo = std::floor(q);
  const double frac = q - lo;
  double n = lo;
  const bool negative = sign != 0;
  switch (mode) {
    case Rounding::Rint:
      if (frac > 0.5 || (frac == 0.5 && std::fmod(lo, 2.0) != 0.0)) n = lo + 1;
      break;
    case Rounding::Round:
      if (frac >= 0.5) n = lo + 1;
      break;
    case Rounding::Trunc:
      break;
    case Rounding::Floor:
      if (negative && frac != 0.0) n = lo + 1;
      break;
    case Rounding::Ceil:
      if (!negative && frac != 0.0) n = lo + 1;
      break;
    case Rounding::Odd:
      if (frac != 0.0 && std::fmod(lo, 2.0) == 0.0) n = lo + 1;
      break;
  }
  const double r = n * ulp;
  if (r > f.max_finite()) {
    // Overflow: modes that round away from zero in this direction give inf, others the max.
    const bool to_inf = mode == Rounding::Rint || mode == Rounding::Round ||
                        (mode == Rounding::Ceil && !negative) || (mode == Rounding::Floor && negative);
    return to_inf ? inf_bits : max_bits;
  }
  if (r < std::ldexp(1.0, f.min_exp())) {  // subnormal (or the smallest normal reached by rounding)
    const uint32_t m = static_cast<uint32_t>(r / std::ldexp(1.0, f.min_exp() - f.mant));
    return sign_bit | m;  // m == 2^mant encodes the smallest normal correctly
  }
  int re2;
  std::frexp(r, &re2);
  const int re = re2 - 1;
  const uint32_t m = static_cast<uint32_t>((r / std::ldexp(1.0, re) - 1.0) * std::ldexp(1.0, f.mant));
  return sign_bit | (static_cast<uint32_t>(re + f.bias()) << f.mant) | m;
}

inline double decode_bits(uint32_t bits, FloatFormat f)
{
  const uint32_t sign = (bits >> (f.mant + f.ebits)) & 1u;
  const uint32_t exp_all = (1u << f.ebits) - 1;
  const uint32_t e = (bits >> f.mant) & exp_all;
  const uint32_t m = bits & ((1u << f.mant) - 1);
  double v;
  if (e == exp_all) {
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(static_cast<double>(m), f.min_exp() - f.mant);
  } else {
    v = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.mant), static_cast<int>(e) - f.bias());
  }
  return sign ? -v : v;
}

}  // namespace blitz_sim

// IEEE binary16 storage; converts from float with round-to-nearest-even, to float exactly.
struct half {
  uint16_t bits = 0;
  half() = default;
  half(float v) : bits(static_cast<uint16_t>(blitz_sim::encode_rounded(v, blitz_sim::kHalfFormat,
                                                                       blitz_sim::Rounding::Rint))) {}
  operator float() const { return static_cast<float>(blitz_sim::decode_bits(bits, blitz_sim::kHalfFormat)); }
  static half from_bits(uint16_t b)
  {
    half h;
    h.bits = b;
    return h;
  }
};

// bfloat16 storage (the top 16 bits of a float); from float with round-to-nearest-even.
struct bfloat16_t {
  uint16_t bits = 0;
  bfloat16_t() = default;
  bfloat16_t(float v)
      : bits(static_cast<uint16_t>(blitz_sim::encode_rounded(v, blitz_sim::kBf16Format, blitz_sim::Rounding::Rint))) {}
  operator float() const
  {
    const uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static bfloat16_t from_bits(uint16_t b)
  {
    bfloat16_t h;
    h.bits = b;
    return h;
  }
};
static_assert(sizeof(half) == 2 && sizeof(bfloat16_t) == 2, "16-bit storage types");
