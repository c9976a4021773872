// The AVX2 + FMA + F16C vector layer (8 fp32 lanes in a ymm register), the same interface as
// vec_avx512.h, for tiles_impl.h. Include only from *_avx2.cpp files (compiled with -mavx2
// -mfma -mf16c, reached only after the CPUID / XCR0 check in cpu_features.cpp).
//
// AVX2 has no bf16 arithmetic: bf16 inputs are widened to fp32 while packing (a 16-bit shift,
// exact), all products are fp32 FMA (F32Ops), and P / the output are narrowed to bf16 here with
// integer round-to-nearest-even; fp16 converts both ways with F16C (vcvtph2ps / vcvtps2ph).
// AVX2 has no masked loads / stores of bytes or 16-bit words, so the tails go through a small
// stack buffer instead.
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "vec_avx2.h needs -mavx2 -mfma -mf16c (include it only from *_avx2.cpp files)"
#endif

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernel/attention_problem.h"
#include "kernel/vec_exp2.h"

namespace blitz::cpu::avx2 {

struct Vec {
  using F = __m256;
  static constexpr int kLanes = 8;               // fp32 lanes: one "column group"
  static constexpr int kVecBytes = kLanes * 4;   // one packed B vector: 8 fp32
  static constexpr bool kBf16Dot = false;        // bf16 is packed widened to fp32
  static constexpr const char *kName = "avx2";

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F load(const float *p) { return _mm256_loadu_ps(p); }
  static void store(float *p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F fmsub(F a, F b, F c) { return _mm256_fmsub_ps(a, b, c); }  // a * b - c

  static float reduce_max(F v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float reduce_add(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  // 2^x for x <= 0 (vec_exp2.h). 2^n is built from its exponent bits: n >= -126 after the
  // clamp, so n + 127 >= 1 is a normal float's biased exponent.
  static F exp2_nonpositive(F x) {
    constexpr int kExponentBias = 127, kMantissaBits = 23;
    const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(kExp2MinExponent), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(kExp2MinExponent));  // NaN -> the clamp; `live` drops it
    const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(kExp2Poly[0]);
    for (int k = 1; k < kExp2PolyTerms; ++k) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Poly[k]));
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(kExponentBias));
    const __m256 two_n = _mm256_castsi256_ps(_mm256_slli_epi32(biased, kMantissaBits));
    return _mm256_and_ps(_mm256_mul_ps(p, two_n), live);
  }

  // v with lanes for keys c .. c+7 outside [lo, hi), or masked by a nonzero byte of mask_row
  // (read only below hi), set to -inf. lo, hi are tile-relative in [0, block_kv]: the 32-bit
  // lane compares cannot wrap.
  static F keep_allowed(F v, int64_t c, int64_t lo, int64_t hi, const uint8_t *mask_row) {
    const __m256i lane = _mm256_add_epi32(_mm256_set1_epi32((int)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i ok = _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)lo - 1)),
                                  _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), lane));
    if (mask_row != nullptr && !_mm256_testz_si256(ok, ok)) {
      uint64_t bytes = 0;  // bytes at or past hi stay 0 (allowed; `ok` already drops them)
      const int64_t readable = hi - c < kLanes ? hi - c : kLanes;
      if (readable > 0) std::memcpy(&bytes, mask_row + c, (size_t)readable);
      const __m256i wide = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)bytes));
      ok = _mm256_andnot_si256(_mm256_cmpgt_epi32(wide, _mm256_setzero_si256()), ok);
    }
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(ok));
  }

  // Each lane rounded to bf16 (nearest even; NaN stays a quiet NaN), as fp32 bits whose low 16
  // bits are zero. The same rule as element_convert.h's float_to_bf16.
  static __m256i bf16_bits(F v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), odd), high);
    const __m256i quiet_nan = _mm256_and_si256(_mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), high);
    const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    return _mm256_blendv_epi8(rounded, quiet_nan, _mm256_castps_si256(is_nan));
  }
  // The same rounding for lanes that are never NaN (P: exp2_nonpositive gives 0 for a NaN
  // argument), without the NaN blend: 5 integer operations instead of 9 per 8 probabilities.
  static F round_bf16_no_nan(F v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), odd);
    return _mm256_castsi256_ps(_mm256_and_si256(rounded, _mm256_set1_epi32((int)0xFFFF0000u)));
  }
  static __m128i fp16_halves(F v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // v rounded to fp16 and back (round to nearest even), as the NPU's P*V takes fp16 P.
  static F round_fp16(F v) { return _mm256_cvtph_ps(fp16_halves(v)); }

  // The first n (1 .. 8) lanes of v, written as element type E at dst.
  template <ElementType E>
  static void store_out(char *dst, int64_t n, F v) {
    if (n > kLanes) n = kLanes;
    if constexpr (E == ElementType::kFloat32) {
      if (n == kLanes) {
        _mm256_storeu_ps(reinterpret_cast<float *>(dst), v);
      } else {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(reinterpret_cast<float *>(dst), m, v);
      }
    } else {
      __m128i halves;
      if constexpr (E == ElementType::kBFloat16) {
        // 32-bit lanes' high halves -> 8 words: packus works per 128-bit lane, so gather the
        // two lanes' results with a 64-bit permute.
        const __m256i words = _mm256_srli_epi32(bf16_bits(v), 16);
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(words, words), _MM_SHUFFLE(3, 1, 2, 0));
        halves = _mm256_castsi256_si128(packed);
      } else {
        halves = fp16_halves(v);
      }
      if (n == kLanes) {
        _mm_storeu_si128(reinterpret_cast<__m128i *>(dst), halves);
      } else {
        alignas(16) uint16_t buffer[kLanes];
        _mm_store_si128(reinterpret_cast<__m128i *>(buffer), halves);
        std::memcpy(dst, buffer, (size_t)n * sizeof(uint16_t));
      }
    }
  }

  // 8 elements of type E at p, widened to fp32 exactly (bf16: a 16-bit shift; fp16: F16C).
  template <ElementType E>
  static F load_as_f32(const void *p) {
    if constexpr (E == ElementType::kFloat32) {
      return _mm256_loadu_ps(static_cast<const float *>(p));
    } else {
      const __m128i h = _mm_loadu_si128(static_cast<const __m128i *>(p));
      if constexpr (E == ElementType::kFloat16) return _mm256_cvtph_ps(h);
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }

  // rows[i][j] <- rows[j][i]: 8 keys' runs of 8 dimensions become 8 dimensions' runs of 8 keys
  // (the fp32 K packing, tiles_impl.h).
  static void transpose(F *rows) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      rows[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
      rows[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
  }

  // Micro-kernel operands (micro_gemm.h): fp32 FMA. 6 x 2 accumulators (6 rows x 16 columns)
  // + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers, the shape AVX2 SGEMM kernels use
  // (two FMA pipes each need >= 5 independent accumulators in flight to cover FMA latency).
  struct F32Ops {
    using V = Vec;
    using Acc = __m256;
    using B = __m256;
    using AElem = float;
    static constexpr int kLanes = Vec::kLanes, kVecBytes = Vec::kVecBytes;
    static constexpr int kMicroRows = 6, kMicroGroups = 2;
    static B load_b(const char *p) { return _mm256_loadu_ps(reinterpret_cast<const float *>(p)); }
    static B broadcast(const AElem *a) { return _mm256_broadcast_ss(a); }
    static Acc fma(Acc acc, B a, B b) { return _mm256_fmadd_ps(a, b, acc); }
  };
};

}  // namespace blitz::cpu::avx2
