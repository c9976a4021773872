// The aarch64 Advanced SIMD (NEON) vector layer (4 fp32 lanes in a q register), the same
// interface as vec_avx2.h / vec_avx512.h, for tiles_impl.h. Include only from *_neon*.cpp files.
//
// neon::Vec: every product is fp32 FMA (F32Ops): bf16 inputs are widened to fp32 while packing
// (a 16-bit shift, exact), fp16 by FCVTL; P and the output are narrowed to bf16 with integer
// round-to-nearest-even (element_convert.h's rule) and to fp16 by FCVTN (round to nearest even,
// Linux's default FPCR). Advanced SIMD is part of every Linux AArch64 CPU (hwcap asimd).
//
// neon::VecBf16 (only where the file is compiled with +bf16, tiles_neon_bf16.cpp, reached after
// the hwcap2 bf16 check): bf16 stays packed as bf16 pairs and the products run BFDOT, which per
// fp32 lane adds the dot product of a pair of bf16 -- the same shape as x86's vdpbf16ps, so the
// AVX-512 path's packed layouts serve unchanged with 4 lanes instead of 16.
//
// Everything is in an anonymous namespace: two files with different -march flags include this
// header, and no inline function of one may be merged into the other by the linker.
#pragma once

#if !defined(__aarch64__) || !defined(__ARM_NEON) || defined(__ARM_BIG_ENDIAN)
#error "vec_neon.h needs little-endian AArch64 (include it only from *_neon*.cpp files)"
#endif

#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernel/attention_problem.h"
#include "kernel/vec_exp2.h"

namespace blitz::cpu::neon {
namespace {

struct Vec {
  using F = float32x4_t;
  static constexpr int kLanes = 4;               // fp32 lanes: one "column group"
  static constexpr int kVecBytes = kLanes * 4;   // one packed B vector: 4 fp32 (or 4 bf16 pairs)
  static constexpr bool kBf16Dot = false;        // bf16 is packed widened to fp32
  static constexpr const char *kName = "neon";

  static F zero() { return vdupq_n_f32(0.0f); }
  static F set1(float x) { return vdupq_n_f32(x); }
  static F load(const float *p) { return vld1q_f32(p); }
  static void store(float *p, F v) { vst1q_f32(p, v); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F max(F a, F b) { return vmaxq_f32(a, b); }
  static F fmsub(F a, F b, F c) { return vfmaq_f32(vnegq_f32(c), a, b); }  // a * b - c, fused

  static float reduce_max(F v) { return vmaxvq_f32(v); }
  static float reduce_add(F v) { return vaddvq_f32(v); }

  // 2^x for x <= 0 (vec_exp2.h). FMAXNM (not FMAX) for the clamp: a NaN becomes the clamp and
  // `live` drops it, as x86's max does. 2^n is built from its exponent bits: n >= -126 after
  // the clamp, so n + 127 >= 1 is a normal float's biased exponent.
  static F exp2_nonpositive(F x) {
    constexpr int kExponentBias = 127, kMantissaBits = 23;
    const uint32x4_t live = vcgeq_f32(x, vdupq_n_f32(kExp2MinExponent));
    x = vmaxnmq_f32(x, vdupq_n_f32(kExp2MinExponent));
    const F n = vrndnq_f32(x);  // FRINTN: round to nearest, ties to even
    const F f = vsubq_f32(x, n);
    F p = vdupq_n_f32(kExp2Poly[0]);
    for (int k = 1; k < kExp2PolyTerms; ++k) p = vfmaq_f32(vdupq_n_f32(kExp2Poly[k]), p, f);
    const int32x4_t biased = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(kExponentBias));
    const F two_n = vreinterpretq_f32_s32(vshlq_n_s32(biased, kMantissaBits));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vmulq_f32(p, two_n)), live));
  }

  // v with lanes for keys c .. c+3 outside [lo, hi), or masked by a nonzero byte of mask_row
  // (read only below hi), set to -inf. lo, hi are tile-relative in [0, block_kv]: the 32-bit
  // lane compares cannot wrap.
  static F keep_allowed(F v, int64_t c, int64_t lo, int64_t hi, const uint8_t *mask_row) {
    static const int32_t kIota[kLanes] = {0, 1, 2, 3};
    const int32x4_t lane = vaddq_s32(vdupq_n_s32((int)c), vld1q_s32(kIota));
    uint32x4_t ok = vandq_u32(vcgeq_s32(lane, vdupq_n_s32((int)lo)), vcltq_s32(lane, vdupq_n_s32((int)hi)));
    if (mask_row != nullptr && vmaxvq_u32(ok) != 0) {
      uint32_t bytes = 0;  // bytes at or past hi stay 0 (allowed; `ok` already drops them)
      const int64_t readable = hi - c < kLanes ? hi - c : kLanes;
      if (readable > 0) std::memcpy(&bytes, mask_row + c, (size_t)readable);
      // Little endian: byte k of `bytes` is key c + k; widen bytes 0..3 to 32-bit lanes 0..3.
      const uint8x8_t narrow = vreinterpret_u8_u32(vdup_n_u32(bytes));
      const uint32x4_t wide = vmovl_u16(vget_low_u16(vmovl_u8(narrow)));
      ok = vandq_u32(ok, vceqzq_u32(wide));
    }
    return vbslq_f32(ok, v, vdupq_n_f32(-INFINITY));
  }

  // Each lane rounded to bf16 (nearest even; NaN stays a quiet NaN), as fp32 bits whose low 16
  // bits are zero. The same rule as element_convert.h's float_to_bf16.
  static uint32x4_t bf16_bits(F v) {
    const uint32x4_t u = vreinterpretq_u32_f32(v);
    const uint32x4_t high = vdupq_n_u32(0xFFFF0000u);
    const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    const uint32x4_t rounded = vandq_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFF)), odd), high);
    const uint32x4_t quiet_nan = vandq_u32(vorrq_u32(u, vdupq_n_u32(0x00400000)), high);
    return vbslq_u32(vceqq_f32(v, v), rounded, quiet_nan);  // v == v: not NaN
  }
  static uint16x4_t bf16_halves(F v) { return vshrn_n_u32(bf16_bits(v), 16); }
  // The same rounding for lanes that are never NaN (P: exp2_nonpositive gives 0 for a NaN
  // argument), without the NaN select.
  static F round_bf16_no_nan(F v) {
    const uint32x4_t u = vreinterpretq_u32_f32(v);
    const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    return vreinterpretq_f32_u32(vandq_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFF)), odd), vdupq_n_u32(0xFFFF0000u)));
  }
  static uint16x4_t fp16_halves(F v) { return vreinterpret_u16_f16(vcvt_f16_f32(v)); }
  // v rounded to fp16 and back (round to nearest even), as the NPU's P*V takes fp16 P.
  static F round_fp16(F v) { return vcvt_f32_f16(vcvt_f16_f32(v)); }
  // 4 lanes -> 4 bf16 (round to nearest even, as the NPU's cast).
  static void store_bf16(uint16_t *dst, F v) { vst1_u16(dst, bf16_halves(v)); }

  // The first n (1 .. 4) lanes of v, written as element type E at dst.
  template <ElementType E>
  static void store_out(char *dst, int64_t n, F v) {
    if (n > kLanes) n = kLanes;
    if constexpr (E == ElementType::kFloat32) {
      if (n == kLanes) {
        vst1q_f32(reinterpret_cast<float *>(dst), v);
      } else {
        float buffer[kLanes];
        vst1q_f32(buffer, v);
        std::memcpy(dst, buffer, (size_t)n * sizeof(float));
      }
    } else {
      const uint16x4_t halves = E == ElementType::kBFloat16 ? bf16_halves(v) : fp16_halves(v);
      if (n == kLanes) {
        vst1_u16(reinterpret_cast<uint16_t *>(dst), halves);
      } else {
        uint16_t buffer[kLanes];
        vst1_u16(buffer, halves);
        std::memcpy(dst, buffer, (size_t)n * sizeof(uint16_t));
      }
    }
  }

  // Micro-kernel operands (micro_gemm.h): fp32 FMA. 6 x 4 accumulators (6 rows x 16 columns)
  // + 4 B vectors + 1 broadcast = 29 of the 32 q registers; per step 10 loads (4 B, 6 LD1R
  // broadcasts) feed 24 FMLAs.
  struct F32Ops {
    using V = Vec;
    using Acc = float32x4_t;
    using B = float32x4_t;
    using AElem = float;
    static constexpr int kLanes = Vec::kLanes, kVecBytes = Vec::kVecBytes;
    static constexpr int kMicroRows = 6, kMicroGroups = 4;
    static B load_b(const char *p) { return vld1q_f32(reinterpret_cast<const float *>(p)); }
    static B broadcast(const AElem *a) { return vld1q_dup_f32(a); }
    static Acc fma(Acc acc, B a, B b) { return vfmaq_f32(acc, a, b); }
  };
};

#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
// The bf16 products on BFDOT (FEAT_BF16); everything else is Vec's.
struct VecBf16 : Vec {
  static constexpr bool kBf16Dot = true;  // bf16 stays packed as bf16 pairs
  static constexpr const char *kName = "neon_bf16";

  // A is read as 32-bit words (a pair of adjacent bf16 along the reduction), B as 4 such pairs;
  // one BFDOT does C[4] += A.lo * B.lo + A.hi * B.hi per lane. Same register budget as F32Ops.
  struct Bf16Ops {
    using V = Vec;
    using Acc = float32x4_t;
    using B = bfloat16x8_t;
    using AElem = uint32_t;  // one bf16 pair
    static constexpr int kLanes = Vec::kLanes, kVecBytes = Vec::kVecBytes;
    static constexpr int kMicroRows = 6, kMicroGroups = 4;
    static B load_b(const char *p) { return vreinterpretq_bf16_u32(vld1q_u32(reinterpret_cast<const uint32_t *>(p))); }
    static B broadcast(const AElem *a) { return vreinterpretq_bf16_u32(vld1q_dup_u32(a)); }
    static Acc fma(Acc acc, B a, B b) { return vbfdotq_f32(acc, a, b); }
  };
};
#endif

}  // namespace
}  // namespace blitz::cpu::neon
