// Cast, Compares, Select and Log as the kernel calls them.
//   Cast (类型转换/Cast.md, the Atlas A2 table): the round modes each conversion accepts; any
//     other is a violation. CAST_NONE = CAST_RINT when the conversion is lossy.
//   Compares (比较与选择/Compares.md): count-form, count * sizeof(T) a multiple of 256 B; bit i of
//     the u8 output (little-endian bytes) is element i's result.
//   Select (比较与选择/Select.md) VSEL_TENSOR_SCALAR_MODE: dst[i] = bit i ? src0[i] : scalar; it
//     uses the 8 KB reserved UB (blitz_sim::kUserUbBytes accounts for it).
//   Log (高阶API/数学计算/Log接口/Log-79.md): natural log; source and destination must not overlap.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "blitz_sim/vector.h"

namespace blitz_sim {

inline Rounding to_rounding(AscendC::RoundMode m)
{
  switch (m) {
    case AscendC::RoundMode::CAST_FLOOR: return Rounding::Floor;
    case AscendC::RoundMode::CAST_CEIL: return Rounding::Ceil;
    case AscendC::RoundMode::CAST_ROUND: return Rounding::Round;
    case AscendC::RoundMode::CAST_TRUNC: return Rounding::Trunc;
    case AscendC::RoundMode::CAST_ODD: return Rounding::Odd;
    default: return Rounding::Rint;  // CAST_RINT; CAST_NONE on a lossy conversion
  }
}

inline const char *round_name(AscendC::RoundMode m)
{
  static const char *const n[] = {"CAST_NONE", "CAST_RINT", "CAST_FLOOR", "CAST_CEIL",
                                  "CAST_ROUND", "CAST_TRUNC", "CAST_ODD", "CAST_HYBRID"};
  return n[static_cast<int>(m)];
}

// The Atlas A2 table rows for the conversions the model implements: allowed modes as a bit set.
template <typename D, typename S>
constexpr uint32_t allowed_modes()
{
  using M = AscendC::RoundMode;
  constexpr uint32_t none = 1u << static_cast<int>(M::CAST_NONE);
  constexpr uint32_t five = (1u << static_cast<int>(M::CAST_RINT)) | (1u << static_cast<int>(M::CAST_FLOOR)) |
                            (1u << static_cast<int>(M::CAST_CEIL)) | (1u << static_cast<int>(M::CAST_ROUND)) |
                            (1u << static_cast<int>(M::CAST_TRUNC));
  if (std::is_same<S, float>::value && std::is_same<D, half>::value) return five | none | (1u << static_cast<int>(M::CAST_ODD));
  if (std::is_same<S, float>::value && std::is_same<D, bfloat16_t>::value) return five;
  if (std::is_same<S, uint8_t>::value && std::is_same<D, half>::value) return none;
  if (std::is_same<S, half>::value && std::is_same<D, float>::value) return none;
  if (std::is_same<S, bfloat16_t>::value && std::is_same<D, float>::value) return none;
  return 0;
}

template <typename D, typename S>
inline D convert(S v, AscendC::RoundMode m)
{
  if constexpr (std::is_same<D, half>::value) {
    return half::from_bits(static_cast<uint16_t>(encode_rounded(static_cast<double>(static_cast<float>(v)), kHalfFormat, to_rounding(m))));
  } else if constexpr (std::is_same<D, bfloat16_t>::value) {
    return bfloat16_t::from_bits(
        static_cast<uint16_t>(encode_rounded(static_cast<double>(static_cast<float>(v)), kBf16Format, to_rounding(m))));
  } else {
    return static_cast<D>(static_cast<float>(v));  // exact widening (half / bf16 -> float)
  }
}

}  // namespace blitz_sim

namespace AscendC {

// Cast.md, count form.
template <typename T, typename U>
inline void Cast(const LocalTensor<T> &dst, const LocalTensor<U> &src, const RoundMode &roundMode, const uint32_t count)
{
  const char *api = "Cast";
  constexpr uint32_t modes = blitz_sim::allowed_modes<T, U>();
  static_assert(modes != 0, "this Cast type pair is not in the model (nor, unless added, in the A2 table)");
  if (!((modes >> static_cast<int>(roundMode)) & 1u)) {
    blitz_sim::fail(api, blitz_sim::msg(blitz_sim::round_name(roundMode),
                                        " is not an accepted round mode for this conversion on Atlas A2 (Cast.md)"));
  }
  blitz_sim::check_vec_operand(api, dst);
  const uint32_t s = blitz_sim::src_span(api, src, count);
  // Different element sizes: the source and destination must not overlap at all.
  if (sizeof(T) != sizeof(U)) {
    const uint32_t d = dst.span(api, 0, count);
    if (!(d + count * sizeof(T) <= s || s + count * sizeof(U) <= d)) {
      blitz_sim::fail(api, "source and destination of a widening/narrowing Cast overlap");
    }
  }
  constexpr uint32_t widest = sizeof(T) > sizeof(U) ? sizeof(T) : sizeof(U);
  blitz_sim::vec_count(api, dst, count, widest, [&](T *out) {
    const std::vector<U> in(src.ptr(), src.ptr() + count);
    for (uint32_t i = 0; i < count; ++i) out[i] = blitz_sim::convert<T, U>(in[i], roundMode);
  }, {{s, count * static_cast<uint32_t>(sizeof(U))}});
}

// Compares.md, count form: dst bit i = (src0[i] <cmp> scalar).
template <typename U, typename T>
inline void Compares(const LocalTensor<U> &dst, const LocalTensor<T> &src0, const T src1Scalar, CMPMODE cmpMode,
                     uint32_t count)
{
  const char *api = "Compares";
  static_assert(std::is_same<U, uint8_t>::value, "the model's Compares writes uint8_t bits");
  static_assert(std::is_same<T, half>::value || std::is_same<T, float>::value, "Compares on half / float");
  if ((count * sizeof(T)) % blitz_sim::kRepeatBytes != 0) {
    blitz_sim::fail(api, blitz_sim::msg(count, " elements = ", count * sizeof(T),
                                        " bytes, not a multiple of 256 (the remainder would be skipped)"));
  }
  blitz_sim::check_vec_operand(api, dst);
  const uint32_t s = blitz_sim::src_span(api, src0, count);
  const uint32_t d = dst.span(api, 0, count / 8);
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeV);
  blitz_sim::ub_access(api, blitz_sim::kPipeV, op, s, count * sizeof(T), false);
  blitz_sim::ub_access(api, blitz_sim::kPipeV, op, d, count / 8, true);
  blitz_sim::count_vec(count, blitz_sim::repeats_of(count, sizeof(T)));
  if (!blitz_sim::computes()) {
    blitz_sim::ub_produced(d, count / 8);
    return;
  }
  const float b = static_cast<float>(src1Scalar);
  std::vector<uint8_t> bits(count / 8, 0);
  const T *in = src0.ptr();
  for (uint32_t i = 0; i < count; ++i) {
    const float a = static_cast<float>(in[i]);
    bool r = false;
    switch (cmpMode) {
      case CMPMODE::LT: r = a < b; break;
      case CMPMODE::GT: r = a > b; break;
      case CMPMODE::EQ: r = a == b; break;
      case CMPMODE::LE: r = a <= b; break;
      case CMPMODE::GE: r = a >= b; break;
      case CMPMODE::NE: r = a != b; break;
    }
    if (r) bits[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
  std::memcpy(dst.ptr(), bits.data(), bits.size());
}

// Select.md, VSEL_TENSOR_SCALAR_MODE, count form.
template <typename T, typename U>
inline void Select(const LocalTensor<T> &dst, const LocalTensor<U> &selMask, const LocalTensor<T> &src0, T src1,
                   SELMODE selMode, uint32_t count)
{
  const char *api = "Select";
  static_assert(std::is_same<T, half>::value || std::is_same<T, float>::value, "Select on half / float");
  if (selMode != SELMODE::VSEL_TENSOR_SCALAR_MODE) blitz_sim::fail(api, "the model implements VSEL_TENSOR_SCALAR_MODE only");
  blitz_sim::check_vec_operand(api, dst);
  blitz_sim::check_vec_operand(api, selMask);
  const uint32_t s = blitz_sim::src_span(api, src0, count);
  const uint32_t maskBytes = (count + 7) / 8;
  const uint32_t m = selMask.span(api, 0, (maskBytes + sizeof(U) - 1) / sizeof(U));
  blitz_sim::vec_count(api, dst, count, sizeof(T), [&](T *out) {
    const std::vector<T> in(src0.ptr(), src0.ptr() + count);
    std::vector<uint8_t> bits(maskBytes);
    std::memcpy(bits.data(), selMask.ptr(), maskBytes);
    for (uint32_t i = 0; i < count; ++i) out[i] = ((bits[i / 8] >> (i % 8)) & 1u) ? in[i] : src1;
  }, {{s, count * static_cast<uint32_t>(sizeof(T))}, {m, maskBytes}});
}

// Log-79.md: dst = ln(src), calCount elements; src and dst must not overlap.
template <typename T>
inline void Log(const LocalTensor<T> &dst, const LocalTensor<T> &src, uint32_t calCount)
{
  const char *api = "Log";
  static_assert(std::is_same<T, half>::value || std::is_same<T, float>::value, "Log on half / float");
  blitz_sim::check_vec_operand(api, dst);
  const uint32_t s = blitz_sim::src_span(api, src, calCount);
  const uint32_t d = dst.span(api, 0, calCount);
  if (!(d + calCount * sizeof(T) <= s || s + calCount * sizeof(T) <= d)) {
    blitz_sim::fail(api, "source and destination overlap (Log-79.md forbids it)");
  }
  blitz_sim::vec_count(api, dst, calCount, sizeof(T), [&](T *out) {
    for (uint32_t i = 0; i < calCount; ++i) out[i] = static_cast<T>(std::log(static_cast<float>(src.ptr()[i])));
  }, {{s, calCount * static_cast<uint32_t>(sizeof(T))}});
}

}  // namespace AscendC
